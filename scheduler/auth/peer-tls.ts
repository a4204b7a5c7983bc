// What the TLS layer made of the certificate a caller presented, for the calls that come with no
// usable credential. grpc-js hands handlers a peer certificate only when it verified
// (getAuthContext); a certificate that failed (another CA, expired) looks like none at all, so
// the caller would be told "no credentials" while it did present one. The socket is reached
// through grpc-js internals, as stream-reset.ts does (server call → nextCall → stream.session.socket);
// if an upgrade moves it, the diagnosis is simply absent (the plain "no credentials" answer), and
// test/e2e/security/cert-expiry.test.ts fails.
import { TLSSocket, type PeerCertificate } from "node:tls";
import { findInCallChain } from "../services/call-chain.js";
import { nodeIdFromSubjectAltName } from "./pki.js";

/** The TLS socket under a grpc-js server call, or undefined (plaintext, or internals moved). */
export function peerTlsSocket(call: object): TLSSocket | undefined {
  // The first link with a session socket decides: a plaintext one means no TLS socket at all.
  const socket = findInCallChain((call as { call?: unknown }).call, (c) => (c as { stream?: { session?: { socket?: unknown } } }).stream?.session?.socket ?? undefined);
  return socket instanceof TLSSocket ? socket : undefined;
}

/** The OpenSSL verify code (Node keeps it as a string there, though its types say Error). */
function verifyErrorCode(socket: TLSSocket): string | undefined {
  const e: unknown = socket.authorizationError;
  if (typeof e === "string") return e;
  if (e instanceof Error) return (e as Error & { code?: string }).code ?? e.message;
  return undefined;
}

/** When a verified peer certificate expires, in ms (valid_to has second precision). */
export const notAfterMsOf = (cert: Pick<PeerCertificate, "valid_to">): number => Date.parse(cert.valid_to);

/**
 * Why the client certificate of this call is not accepted, in words that name no secret: it was
 * not issued by this cluster's CA, it expired (when), it is not valid yet, or it names no node.
 * Undefined when the caller presented no certificate (or the socket cannot be reached).
 */
export function rejectedCertificateReason(call: object, verifiedCert?: PeerCertificate): string | undefined {
  if (verifiedCert?.raw) {
    return nodeIdFromSubjectAltName(verifiedCert.subjectaltname) ? undefined : "the client certificate is issued by this cluster's CA but is not a node certificate (no distx-node identity)";
  }
  const socket = peerTlsSocket(call);
  if (!socket || socket.authorized) return undefined;
  const cert = socket.getPeerCertificate();
  if (!cert?.raw) return undefined;
  const nodeId = nodeIdFromSubjectAltName(cert.subjectaltname);
  const whose = nodeId ? `the node certificate of ${nodeId}` : "the client certificate";
  const code = verifyErrorCode(socket);
  switch (code) {
    case "CERT_HAS_EXPIRED":
      return `${whose} expired at ${new Date(notAfterMsOf(cert)).toISOString()}: an agent renews it with proof of its key (RenewCertificate), or joins again`;
    case "CERT_NOT_YET_VALID":
      return `${whose} is not valid until ${new Date(Date.parse(cert.valid_from)).toISOString()} (check this machine's clock)`;
    case "UNABLE_TO_GET_ISSUER_CERT":
    case "UNABLE_TO_GET_ISSUER_CERT_LOCALLY":
    case "UNABLE_TO_VERIFY_LEAF_SIGNATURE":
    case "DEPTH_ZERO_SELF_SIGNED_CERT":
    case "SELF_SIGNED_CERT_IN_CHAIN":
    case "CERT_SIGNATURE_FAILURE":
      return `${whose} is not issued by this cluster's CA (a certificate of another cluster, or from before a CA rotation was finished): join this cluster with a join token`;
    default:
      return `${whose} was refused by the TLS check (${code ?? "unknown reason"})`;
  }
}
