// The one authentication entry point: every RPC's caller becomes a Principal here before a
// handler runs. Nodes are identified by the certificate they present in mutual TLS (verified
// against the cluster CA by the TLS layer, then checked against the revocation list); clients by
// the API token in `authorization: Bearer <token>` metadata; --insecure clusters have one
// principal for everyone.
import * as grpc from "@grpc/grpc-js";
import type { PeerCertificate } from "node:tls";
import { DistxError } from "../../common/errors.js";
import { nodeIdFromSubjectAltName } from "./pki.js";
import type { Principal } from "./principal.js";
import type { Revocations } from "./revocations.js";
import { TokenError, tokenId, verifyToken, type TokenStore } from "./tokens.js";

export interface AuthenticationContext {
  insecure: boolean;
  tokens: TokenStore;
  revocations: Revocations;
}

/** What authenticate needs of a call: its metadata and, with TLS, the verified peer certificate. */
export interface AuthenticatedCall {
  metadata: grpc.Metadata;
  getAuthContext(): { sslPeerCertificate?: PeerCertificate } | null;
}

export const unauthenticated = (msg: string) => new DistxError(grpc.status.UNAUTHENTICATED, msg);
export const permissionDenied = (msg: string) => new DistxError(grpc.status.PERMISSION_DENIED, msg);

/**
 * The node principal of a call that presented a certificate issued by the cluster CA for a node
 * identity; undefined when it presented none (or one without a node identity). Throws
 * UNAUTHENTICATED for a revoked certificate.
 */
export function nodePrincipal(call: AuthenticatedCall, ctx: AuthenticationContext): Principal | undefined {
  // grpc-js fills sslPeerCertificate only when the TLS layer verified the chain against our CA.
  const cert = call.getAuthContext()?.sslPeerCertificate;
  if (!cert) return undefined;
  const nodeId = nodeIdFromSubjectAltName(cert.subjectaltname);
  if (!nodeId) return undefined;
  if (ctx.revocations.isRevoked(nodeId, cert.serialNumber)) throw unauthenticated(`the certificate of node ${nodeId} was revoked (the node was removed): join again with a new join token`);
  return { kind: "node", nodeId, certSerial: cert.serialNumber.toLowerCase() };
}

/** The bearer token in the call's metadata, if any. */
export function bearerToken(metadata: grpc.Metadata): string | undefined {
  const value = metadata.get("authorization")[0];
  if (typeof value !== "string") return undefined;
  const m = /^Bearer\s+(\S+)$/i.exec(value.trim());
  return m?.[1];
}

/**
 * Client part (API tokens). Kept as one function so the authorization layer can extend it
 * (tenants, roles, policy) without touching the node part.
 */
export async function clientPrincipal(token: string, ctx: AuthenticationContext): Promise<Principal> {
  try {
    const record = await verifyToken(ctx.tokens, token, "api");
    return { kind: "client", tokenId: record.id, role: record.role ?? "read", tenant: record.tenant };
  } catch (err) {
    if (err instanceof TokenError) {
      const id = tokenId(token);
      throw unauthenticated(id && err.reason !== "malformed" ? err.message : `the token is not a valid DistributeX API token (${err.reason})`);
    }
    throw err;
  }
}

export async function authenticate(call: AuthenticatedCall, ctx: AuthenticationContext): Promise<Principal> {
  if (ctx.insecure) return { kind: "insecure" };
  const node = nodePrincipal(call, ctx);
  if (node) return node;
  const token = bearerToken(call.metadata);
  if (token) return clientPrincipal(token, ctx);
  throw unauthenticated("no credentials: pass --token or DISTX_TOKEN (or use the client profile written by `distx init`)");
}

/** Principals of calls being handled, for handlers that need to know who is calling. */
const principals = new WeakMap<object, Principal>();
export const principalOf = (call: object): Principal | undefined => principals.get(call);
export const setPrincipal = (call: object, p: Principal): void => void principals.set(call, p);
