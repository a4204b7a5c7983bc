// The one authentication entry point: every RPC's caller becomes a Principal here before a
// handler runs. Nodes are identified by the certificate they present in mutual TLS (verified
// against the cluster CA by the TLS layer, then checked against the revocation list); clients by
// the API token in `authorization: Bearer <token>` metadata (so grpcurl -H and generated clients
// in any language work); --insecure clusters have one principal for everyone.
import * as nodeCrypto from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import type { PeerCertificate } from "node:tls";
import { DistributeXError } from "../../common/errors.js";
import { nodeIdFromSubjectAltName } from "./pki.js";
import type { Principal } from "./principal.js";
import type { Revocations } from "./revocations.js";
import { TokenError, verifyToken, type TokenRecord, type TokenStore } from "./tokens.js";

export const INSECURE_PRINCIPAL: Principal = Object.freeze({ kind: "insecure" });

/** Header values longer than this are refused unread: a token is 70 characters. */
const MAX_AUTHORIZATION_CHARS = 512;

/** How long a verified token is trusted without asking the store again (Redis: a round trip per call saved). */
const VERIFIED_TTL_MS = 1000;
const MAX_VERIFIED = 10_000;

/** What the cache keeps of a verified token: its principal, built once, and until when it holds. */
export interface VerifiedToken {
  record: TokenRecord;
  principal: Principal;
  untilMs: number;
}

export interface AuthenticationContext {
  readonly insecure: boolean;
  readonly tokens: TokenStore;
  readonly revocations: Revocations;
  /** Recently verified API tokens by sha256 of their text (never the text). Cleared on every revoke. */
  readonly verified: Map<string, VerifiedToken>;
}

// One-shot hashing (Node ≥ 20.12) costs a fraction of createHash's Hash object per call; the
// token's secret is 256 random bits, so an unkeyed SHA-256 is as good a cache key as a keyed one.
const oneShotHash = (nodeCrypto as unknown as { hash?: (algorithm: string, data: string, encoding: "base64") => string }).hash;
const tokenKey = (token: string): string => (oneShotHash ? oneShotHash("sha256", token, "base64") : nodeCrypto.createHash("sha256").update(token).digest("base64"));
/** The name the authorization layer uses. */
export type AuthContext = AuthenticationContext;

/** What authenticate needs of a call: its metadata and, with TLS, the verified peer certificate. */
export interface AuthenticatedCall {
  readonly metadata: grpc.Metadata;
  getAuthContext?(): { sslPeerCertificate?: PeerCertificate } | null;
}

export const unauthenticated = (msg: string) => new DistributeXError(grpc.status.UNAUTHENTICATED, msg);
export const permissionDenied = (msg: string) => new DistributeXError(grpc.status.PERMISSION_DENIED, msg);

/**
 * The node principal of a call that presented a certificate issued by the cluster CA for a node
 * identity; undefined when it presented none (or one without a node identity). Throws
 * UNAUTHENTICATED for a revoked certificate.
 */
export function nodePrincipal(call: AuthenticatedCall, ctx: AuthenticationContext): Principal | undefined {
  // grpc-js fills sslPeerCertificate only when the TLS layer verified the chain against our CA.
  const cert = call.getAuthContext?.()?.sslPeerCertificate;
  if (!cert || !cert.subjectaltname) return undefined;
  const nodeId = nodeIdFromSubjectAltName(cert.subjectaltname);
  if (!nodeId) return undefined;
  if (ctx.revocations.isRevoked(nodeId, cert.serialNumber)) throw unauthenticated(`the certificate of node ${nodeId} was revoked (the node was removed): join again with a new join token`);
  return { kind: "node", nodeId, certSerial: cert.serialNumber.toLowerCase(), certDer: cert.raw };
}

/**
 * The caller's principal. Synchronous when it can be (--insecure, a node certificate, a token
 * verified within the last second): the call then goes on in the same tick, with no promise; a
 * Promise only when the token store must be asked. Throws (or rejects) with UNAUTHENTICATED.
 */
export function authenticate(call: AuthenticatedCall, ctx: AuthenticationContext): Principal | Promise<Principal> {
  if (ctx.insecure) return INSECURE_PRINCIPAL;
  const node = nodePrincipal(call, ctx);
  if (node) return node;
  return authenticateClient(call.metadata, ctx);
}

/** The client principal of a bearer token; UNAUTHENTICATED (never echoing the secret) otherwise. Synchronous on a cache hit. */
export function authenticateClient(metadata: grpc.Metadata, ctx: AuthenticationContext, nowMs = Date.now()): Principal | Promise<Principal> {
  const values = metadata.get("authorization");
  if (values.length === 0) throw unauthenticated("no credentials: pass --token or DISTX_TOKEN (gRPC metadata `authorization: Bearer <token>`), or use the client profile written by `distx init`");
  const header = values[0];
  if (typeof header !== "string" || values.length > 1 || header.length > MAX_AUTHORIZATION_CHARS) {
    throw unauthenticated("the authorization metadata must be one `Bearer <token>` value");
  }
  const m = /^Bearer +(\S+)$/i.exec(header.trim());
  if (!m) throw unauthenticated("the authorization metadata must be `Bearer <token>`");
  const token = m[1]!;
  const key = tokenKey(token);
  const cached = ctx.verified.get(key);
  if (cached && cached.untilMs > nowMs) return cached.principal;
  return verifyAndRemember(token, key, ctx, nowMs);
}

async function verifyAndRemember(token: string, key: string, ctx: AuthenticationContext, nowMs: number): Promise<Principal> {
  let record: TokenRecord;
  try {
    record = await verifyToken(ctx.tokens, token, "api", nowMs);
  } catch (err) {
    if (err instanceof TokenError) {
      const hint = err.reason === "revoked" || err.reason === "expired" ? "; ask an admin for a new one (distx token create)" : "";
      throw unauthenticated(`${err.message}${hint}`);
    }
    throw err;
  }
  const principal: Principal = Object.freeze({ kind: "client", tokenId: record.id, role: record.role ?? "read", tenant: record.tenant });
  if (ctx.verified.size >= MAX_VERIFIED) ctx.verified.clear();
  ctx.verified.set(key, { record, principal, untilMs: Math.min(nowMs + VERIFIED_TTL_MS, record.expiresAtMs ?? Infinity) });
  return principal;
}

/** Principals of calls being handled, for handlers that need to know who is calling. */
const principals = new WeakMap<object, Principal>();
export const principalOf = (call: object): Principal | undefined => principals.get(call);
export const setPrincipal = (call: object, p: Principal): void => void principals.set(call, p);
