// Bearer tokens: API tokens for clients (a role and a tenant) and join tokens for agents
// (time-limited and/or limited in uses, as kubeadm's bootstrap tokens). Only a hash of each
// secret is stored; a token is `dx<kind>_<id>_<secret>`, where the id is public (it names the
// token in lists and logs) and the secret is 256 random bits, so a plain sha256 is enough
// (no password stretching needed for secrets that cannot be guessed).
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { DEFAULT_TENANT, TENANT_PATTERN, type Role } from "./principal.js";

export type TokenKind = "api" | "join";
const KIND_TAG: Record<TokenKind, string> = { api: "dxa", join: "dxj" };
const TOKEN_PATTERN = /^(dxa|dxj)_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface TokenRecord {
  id: string;
  kind: TokenKind;
  /** API tokens only. */
  role?: Role;
  tenant: string;
  description: string;
  createdAtMs: number;
  expiresAtMs?: number;
  revokedAtMs?: number;
  /** Uses left for a limited-use token (join tokens); absent = unlimited until expiry. */
  usesLeft?: number;
  /** sha256 of the secret, hex. */
  secretHash: string;
  /** The token text's last 4 characters, so that a listing can be matched to a token without showing it. */
  last4?: string;
}

/** Where token records live: with the scheduler's state (memory, a file, or Redis). */
export interface TokenStore {
  put(record: TokenRecord): Promise<void>;
  get(id: string): Promise<TokenRecord | undefined>;
  list(): Promise<TokenRecord[]>;
  /** Marks the token revoked; false when there is no such token. */
  revoke(id: string, atMs: number): Promise<boolean>;
  /** Atomically takes one use of a limited-use token; false when none is left. Unlimited tokens: true. */
  takeUse(id: string): Promise<boolean>;
}

/** Why a token was refused. The message never contains the secret. */
export type TokenRefusal = "malformed" | "unknown" | "wrong-kind" | "bad-secret" | "revoked" | "expired" | "used-up";

export class TokenError extends Error {
  override readonly name = "TokenError";
  constructor(
    readonly reason: TokenRefusal,
    message: string,
  ) {
    super(message);
  }
}

export interface IssueTokenOptions {
  kind: TokenKind;
  role?: Role;
  tenant?: string;
  description?: string;
  ttlMs?: number;
  uses?: number;
  nowMs?: number;
}

export const hashSecret = (secret: string) => createHash("sha256").update(secret).digest("hex");

/** Creates a token, stores its record, and returns the only copy of the secret. */
export async function issueToken(store: TokenStore, opts: IssueTokenOptions): Promise<{ token: string; record: TokenRecord }> {
  const tenant = opts.tenant ?? DEFAULT_TENANT;
  if (!TENANT_PATTERN.test(tenant)) throw new TokenError("malformed", `tenant ${JSON.stringify(tenant)} must match ${TENANT_PATTERN}`);
  if (opts.kind === "api" && !opts.role) throw new TokenError("malformed", "an API token needs a role");
  if (opts.ttlMs !== undefined && !(opts.ttlMs > 0)) throw new TokenError("malformed", "ttl must be positive");
  if (opts.uses !== undefined && !(Number.isInteger(opts.uses) && opts.uses > 0)) throw new TokenError("malformed", "uses must be a positive integer");
  const now = opts.nowMs ?? Date.now();
  const id = randomBytes(8).toString("hex");
  const secret = randomBytes(32).toString("base64url");
  const record: TokenRecord = {
    id,
    kind: opts.kind,
    ...(opts.role ? { role: opts.role } : {}),
    tenant,
    description: (opts.description ?? "").slice(0, 200),
    createdAtMs: now,
    ...(opts.ttlMs !== undefined ? { expiresAtMs: now + opts.ttlMs } : {}),
    ...(opts.uses !== undefined ? { usesLeft: opts.uses } : {}),
    secretHash: hashSecret(secret),
  };
  record.last4 = secret.slice(-4);
  await store.put(record);
  return { token: `${KIND_TAG[opts.kind]}_${id}_${secret}`, record };
}

/** The public id of a well-formed token (for logs and revocation), or undefined. */
export function tokenId(token: string): string | undefined {
  return TOKEN_PATTERN.exec(token)?.[2];
}

/**
 * Checks a presented token: well formed, known, of the expected kind, the right secret, not
 * revoked, not expired. Does not take a use (see consumeToken). Throws TokenError.
 */
export async function verifyToken(store: TokenStore, token: string, kind: TokenKind, nowMs = Date.now()): Promise<TokenRecord> {
  const m = TOKEN_PATTERN.exec(token);
  if (!m) throw new TokenError("malformed", "the token is not a DistributeX token");
  const record = await store.get(m[2]!);
  if (!record) throw new TokenError("unknown", `token ${m[2]} is not known to this cluster`);
  if (record.kind !== kind || m[1] !== KIND_TAG[kind]) throw new TokenError("wrong-kind", `token ${record.id} is a ${record.kind} token, not a ${kind} token`);
  const presented = Buffer.from(hashSecret(m[3]!), "hex");
  const stored = Buffer.from(record.secretHash, "hex");
  if (presented.length !== stored.length || !timingSafeEqual(presented, stored)) throw new TokenError("bad-secret", `token ${record.id}: wrong secret`);
  if (record.revokedAtMs !== undefined) throw new TokenError("revoked", `token ${record.id} was revoked`);
  if (record.expiresAtMs !== undefined && nowMs >= record.expiresAtMs) throw new TokenError("expired", `token ${record.id} expired at ${new Date(record.expiresAtMs).toISOString()}`);
  return record;
}

/** verifyToken, then takes one use of a limited-use token (a join token cannot be used twice). */
export async function consumeToken(store: TokenStore, token: string, kind: TokenKind, nowMs = Date.now()): Promise<TokenRecord> {
  const record = await verifyToken(store, token, kind, nowMs);
  if (!(await store.takeUse(record.id))) throw new TokenError("used-up", `token ${record.id} has already been used`);
  return record;
}
