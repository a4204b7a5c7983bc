// Authentication: turns the credentials on a call into a Principal before any handler runs.
// Clients present an API token as gRPC metadata `authorization: Bearer <token>` (so grpcurl -H
// and generated clients in any language work); agents are identified by the node certificate
// they present in mutual TLS (the TLS/identity part). `--insecure` clusters have one principal.
import { createHash } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { DistxError } from "../../common/errors.js";
import type { Principal } from "./principal.js";
import { TokenError, verifyToken, type TokenRecord, type TokenStore } from "./tokens.js";

export const INSECURE_PRINCIPAL: Principal = Object.freeze({ kind: "insecure" });

/** Header values longer than this are refused unread: a token is 70 characters. */
const MAX_AUTHORIZATION_CHARS = 512;

/** How long a verified token is trusted without asking the store again (Redis: a round trip per call saved). */
const VERIFIED_TTL_MS = 1000;
const MAX_VERIFIED = 10_000;

export interface AuthContext {
  readonly insecure: boolean;
  /** The scheduler's token store; undefined until it is open (the server does not listen before). */
  tokens: TokenStore | undefined;
  /** Recently verified API tokens by sha256 of their text (never the text). Cleared on every revoke. */
  readonly verified: Map<string, { record: TokenRecord; untilMs: number }>;
}

export function newAuthContext(insecure: boolean, tokens?: TokenStore): AuthContext {
  return { insecure, tokens, verified: new Map() };
}

export const unauthenticated = (msg: string) => new DistxError(grpc.status.UNAUTHENTICATED, msg);

/** The call's metadata and, with TLS, its peer certificate. */
export interface AuthenticatedCall {
  readonly metadata: grpc.Metadata;
}

export async function authenticate(call: AuthenticatedCall, ctx: AuthContext): Promise<Principal> {
  if (ctx.insecure) return INSECURE_PRINCIPAL;
  // Node principals (the agent's verified peer certificate) are resolved here by the TLS part;
  // without TLS no call carries one, and a client is whoever its bearer token says.
  return authenticateClient(call.metadata, ctx);
}

/** The client principal of a bearer token; UNAUTHENTICATED (never echoing the secret) otherwise. */
export async function authenticateClient(metadata: grpc.Metadata, ctx: AuthContext, nowMs = Date.now()): Promise<Principal> {
  const values = metadata.get("authorization");
  if (values.length === 0) throw unauthenticated("no credentials: pass --token or DISTX_TOKEN (gRPC metadata `authorization: Bearer <token>`)");
  const header = values[0];
  if (typeof header !== "string" || values.length > 1 || header.length > MAX_AUTHORIZATION_CHARS) {
    throw unauthenticated("the authorization metadata must be one `Bearer <token>` value");
  }
  const m = /^Bearer +(\S+)$/i.exec(header.trim());
  if (!m) throw unauthenticated("the authorization metadata must be `Bearer <token>`");
  const token = m[1]!;
  const key = createHash("sha256").update(token).digest("hex");
  const cached = ctx.verified.get(key);
  let record: TokenRecord;
  if (cached && cached.untilMs > nowMs) {
    record = cached.record;
  } else {
    if (!ctx.tokens) throw new DistxError(grpc.status.UNAVAILABLE, "the scheduler is starting; retry");
    try {
      record = await verifyToken(ctx.tokens, token, "api", nowMs);
    } catch (err) {
      if (err instanceof TokenError) {
        const hint = err.reason === "revoked" || err.reason === "expired" ? "; ask an admin for a new one (distx token create)" : "";
        throw unauthenticated(`${err.message}${hint}`);
      }
      throw err;
    }
    if (ctx.verified.size >= MAX_VERIFIED) ctx.verified.clear();
    ctx.verified.set(key, { record, untilMs: Math.min(nowMs + VERIFIED_TTL_MS, record.expiresAtMs ?? Infinity) });
  }
  return { kind: "client", tokenId: record.id, role: record.role ?? "read", tenant: record.tenant };
}
