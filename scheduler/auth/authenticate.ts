// The one authentication entry point: every RPC's caller becomes a Principal here before a
// handler runs. Nodes are identified by the certificate they present in mutual TLS (verified
// against the cluster CA by the TLS layer, then checked against the revocation list); clients by
// the API token in `authorization: Bearer <token>` metadata (so grpcurl -H and generated clients
// in any language work); --insecure clusters have one principal for everyone.
import * as grpc from "@grpc/grpc-js";
import type { PeerCertificate } from "node:tls";
import { DistributeXError } from "../../common/errors.js";
import { notAfterMsOf, peerTlsSocket, rejectedCertificateReason } from "./peer-tls.js";
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

/**
 * API tokens verified within the last second, keyed by the exact `authorization` header text, so
 * that a call on the fast path costs one map lookup: no parsing and no hashing (a SHA-256 key
 * cost ~15–20 µs a call under load, a third of what authentication added to a call with TLS).
 * Keeping the text is no new exposure: every HTTP/2 connection's HPACK table already holds it for
 * the connection's life, while an entry here is swept within about two seconds of its last
 * verification. Cleared on every revoke.
 */
export class VerifiedTokens {
  private readonly byHeader = new Map<string, VerifiedToken>();
  private lastSweepMs = 0;

  get size(): number {
    return this.byHeader.size;
  }

  /** The entry for this header, if it still holds at `nowMs`. */
  get(header: string, nowMs: number): VerifiedToken | undefined {
    const entry = this.byHeader.get(header);
    if (entry === undefined || entry.untilMs > nowMs) return entry;
    this.byHeader.delete(header);
    return undefined;
  }

  set(header: string, entry: VerifiedToken, nowMs: number): void {
    if (nowMs - this.lastSweepMs >= VERIFIED_TTL_MS) this.sweep(nowMs);
    if (this.byHeader.size >= MAX_VERIFIED && !this.byHeader.has(header)) {
      // Full of live entries (more distinct tokens within a second than the bound): drop the
      // oldest, not all, so the tokens in steady use keep their fast path.
      this.sweep(nowMs);
      if (this.byHeader.size >= MAX_VERIFIED) this.byHeader.delete(this.byHeader.keys().next().value!);
    }
    this.byHeader.delete(header); // re-inserted last: the newest entry is the last one dropped
    this.byHeader.set(header, entry);
  }

  clear(): void {
    this.byHeader.clear();
  }

  /** Drops expired entries, so a token's text is not kept long after its last use. */
  private sweep(nowMs: number): void {
    this.lastSweepMs = nowMs;
    for (const [header, entry] of this.byHeader) if (entry.untilMs <= nowMs) this.byHeader.delete(header);
  }
}

export interface AuthenticationContext {
  readonly insecure: boolean;
  readonly tokens: TokenStore;
  readonly revocations: Revocations;
  /** Recently verified API tokens (see VerifiedTokens). Cleared on every revoke. */
  readonly verified: VerifiedTokens;
}

/** The name the authorization layer uses. */
export type AuthContext = AuthenticationContext;

/** What authenticate needs of a call: its metadata and, with TLS, the verified peer certificate. */
export interface AuthenticatedCall {
  readonly metadata: grpc.Metadata;
  getAuthContext?(): { sslPeerCertificate?: PeerCertificate } | null;
}

export const unauthenticated = (msg: string) => new DistributeXError(grpc.status.UNAUTHENTICATED, msg);
export const permissionDenied = (msg: string) => new DistributeXError(grpc.status.PERMISSION_DENIED, msg);

type NodePrincipal = Extract<Principal, { kind: "node" }>;

/** A verified node certificate as every call on its connection needs it: the principal, the serial as the revocation list takes it, and its expiry. */
interface NodeCertificate {
  readonly principal: NodePrincipal;
  readonly serialNumber: string;
  readonly notAfterMs: number;
}

/**
 * Node certificates by connection (its TLS socket), read once: grpc-js builds the peer certificate
 * anew on every getAuthContext (getPeerCertificate: every field, the DER copied), and its expiry
 * was parsed from text on every call (~0.5 ms a FetchBlob call). A connection's certificate cannot
 * change (TLS 1.3 only: no renegotiation); revocation and expiry are still checked on every call.
 * null: the connection has no verified node certificate. Weak keys: gone with the connection.
 */
const certificatesByConnection = new WeakMap<object, NodeCertificate | null>();

function nodeCertificateOf(cert: PeerCertificate | undefined): NodeCertificate | null {
  // grpc-js fills sslPeerCertificate only when the TLS layer verified the chain against our CA.
  if (!cert || !cert.subjectaltname) return null;
  const nodeId = nodeIdFromSubjectAltName(cert.subjectaltname);
  if (!nodeId) return null;
  const notAfterMs = notAfterMsOf(cert);
  const principal: NodePrincipal = Object.freeze({ kind: "node", nodeId, certSerial: cert.serialNumber.toLowerCase(), certDer: cert.raw, certNotAfterMs: notAfterMs });
  return { principal, serialNumber: cert.serialNumber, notAfterMs };
}

/** The call's verified node certificate: once per connection where its socket is reachable, else read from the call. */
function nodeCertificate(call: AuthenticatedCall): NodeCertificate | null {
  const socket = peerTlsSocket(call);
  if (!socket) return nodeCertificateOf(call.getAuthContext?.()?.sslPeerCertificate);
  let known = certificatesByConnection.get(socket);
  if (known === undefined) {
    known = nodeCertificateOf(call.getAuthContext?.()?.sslPeerCertificate);
    certificatesByConnection.set(socket, known);
  }
  return known;
}

/**
 * The node principal of a call that presented a certificate issued by the cluster CA for a node
 * identity; undefined when it presented none (or one without a node identity). Throws
 * UNAUTHENTICATED for a revoked certificate, and for one that expired since its connection's TLS
 * handshake: TLS checks expiry only then, and an HTTP/2 connection outlives a certificate.
 * `expired: "ignore"` answers undefined for an expired one instead (RenewCertificate: the proof path).
 */
export function nodePrincipal(call: AuthenticatedCall, ctx: AuthenticationContext, nowMs = Date.now(), expired: "refuse" | "ignore" = "refuse"): Principal | undefined {
  const cert = nodeCertificate(call);
  if (!cert) return undefined;
  const { nodeId } = cert.principal;
  if (ctx.revocations.isRevoked(nodeId, cert.serialNumber)) throw unauthenticated(`the certificate of node ${nodeId} was revoked (the node was removed): join again with a new join token`);
  if (!(nowMs < cert.notAfterMs)) {
    if (expired === "ignore") return undefined;
    throw unauthenticated(expiredMessage(nodeId, cert.notAfterMs));
  }
  return cert.principal;
}

/** What a node is told when the certificate its connection was opened with has expired. */
export const expiredMessage = (nodeId: string, notAfterMs: number): string =>
  `the node certificate of ${nodeId} expired at ${new Date(notAfterMs).toISOString()}; reconnect with the renewed certificate`;

/**
 * The caller's principal. Synchronous when it can be (--insecure, a node certificate, a token
 * verified within the last second): the call then goes on in the same tick, with no promise; a
 * Promise only when the token store must be asked. Throws (or rejects) with UNAUTHENTICATED.
 */
export function authenticate(call: AuthenticatedCall, ctx: AuthenticationContext): Principal | Promise<Principal> {
  if (ctx.insecure) return INSECURE_PRINCIPAL;
  const node = nodePrincipal(call, ctx);
  if (node) return node;
  if (call.metadata.get("authorization").length === 0) {
    // No token either: a certificate that was presented but not accepted says why, not "no credentials".
    const why = rejectedCertificateReason(call, call.getAuthContext?.()?.sslPeerCertificate);
    if (why) throw unauthenticated(why);
  }
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
  // The fast path: this exact header was verified within the last second.
  const cached = ctx.verified.get(header, nowMs);
  if (cached) return cached.principal;
  const m = /^Bearer +(\S+)$/i.exec(header.trim());
  if (!m) throw unauthenticated("the authorization metadata must be `Bearer <token>`");
  return verifyAndRemember(m[1]!, header, ctx, nowMs);
}

async function verifyAndRemember(token: string, header: string, ctx: AuthenticationContext, nowMs: number): Promise<Principal> {
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
  ctx.verified.set(header, { record, principal, untilMs: Math.min(nowMs + VERIFIED_TTL_MS, record.expiresAtMs ?? Infinity) }, nowMs);
  return principal;
}

/** Principals of calls being handled, for handlers that need to know who is calling. */
const principals = new WeakMap<object, Principal>();
export const principalOf = (call: object): Principal | undefined => principals.get(call);
export const setPrincipal = (call: object, p: Principal): void => void principals.set(call, p);
