// CreateToken / ListTokens / RevokeToken (admin only, by the policy table): API tokens with a
// role and a tenant. The token text is returned once by CreateToken; the store keeps its hash.
import * as grpc from "@grpc/grpc-js";
import { DistributeXError, invalidArgument, notFound } from "../../common/errors.js";
import type { TokenInfoIn } from "../../common/types.js";
import type { AuthContext } from "../auth/authenticate.js";
import { ROLES, type Role } from "../auth/principal.js";
import { issueToken, TokenError, type TokenRecord, type TokenStore } from "../auth/tokens.js";
import { MAX_TOKENS } from "../auth/token-stores.js";

export function tokenInfo(r: TokenRecord): TokenInfoIn {
  return {
    id: r.id,
    kind: r.kind,
    role: r.role ?? "",
    tenant: r.tenant,
    description: r.description,
    createdAtMs: r.createdAtMs,
    expiresAtMs: r.expiresAtMs ?? 0,
    revokedAtMs: r.revokedAtMs ?? 0,
    last4: r.last4 ?? "",
  };
}

const store = (auth: AuthContext): TokenStore => {
  if (!auth.tokens) throw new DistributeXError(grpc.status.UNAVAILABLE, "the scheduler is starting; retry");
  return auth.tokens;
};

export async function createToken(auth: AuthContext, req: { role: string; tenant: string; ttlMs: number; description: string }) {
  if (!(ROLES as readonly string[]).includes(req.role)) throw invalidArgument(`role must be one of ${ROLES.join(", ")}, got ${JSON.stringify(req.role.slice(0, 40))}`);
  if (!Number.isFinite(req.ttlMs) || req.ttlMs < 0) throw invalidArgument(`ttl_ms must be 0 (never expires) or a positive number of ms, got ${req.ttlMs}`);
  if (req.description.length > 200) throw invalidArgument("description must be at most 200 characters");
  try {
    const { token, record } = await issueToken(store(auth), {
      kind: "api",
      role: req.role as Role,
      ...(req.tenant ? { tenant: req.tenant } : {}),
      description: req.description,
      ...(req.ttlMs > 0 ? { ttlMs: req.ttlMs } : {}),
    });
    return { token, info: tokenInfo(record) };
  } catch (err) {
    if (err instanceof TokenError) throw invalidArgument(err.message);
    if (err instanceof Error && err.message.startsWith("token store is full")) {
      throw new DistributeXError(grpc.status.RESOURCE_EXHAUSTED, `${err.message} (limit ${MAX_TOKENS}); retrying will not help until some are revoked`);
    }
    throw err;
  }
}

export async function listTokens(auth: AuthContext, req: { includeRevoked: boolean }) {
  const all = await store(auth).list();
  return {
    tokens: all
      .filter((r) => req.includeRevoked || r.revokedAtMs === undefined)
      .sort((a, b) => a.createdAtMs - b.createdAtMs)
      .map(tokenInfo),
  };
}

export async function revokeToken(auth: AuthContext, req: { id: string }) {
  if (!/^[0-9a-f]{16}$/.test(req.id)) throw invalidArgument(`id must be a token id (16 hex digits, as distx token list shows), got ${JSON.stringify(req.id.slice(0, 40))}`);
  const tokens = store(auth);
  if (!(await tokens.revoke(req.id, Date.now()))) throw notFound(`no token ${req.id}`);
  // Tokens verified a moment ago must not outlive their revocation on this scheduler.
  auth.verified.clear();
  return tokenInfo((await tokens.get(req.id))!);
}
