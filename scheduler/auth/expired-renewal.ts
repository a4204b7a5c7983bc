// The scheduler's check of a renewal after expiry (common/renewal-proof.ts): the certificate a
// trusted CA issued for a node identity, expired less than `graceMs` ago, the node not removed,
// and the proof a signature by its key over the CSR. Anything else is refused with the reason.
import { X509Certificate } from "node:crypto";
import { checkRenewalProof } from "../../common/renewal-proof.js";
import { MAX_CERT_BYTES } from "../../common/record-signature.js";
import { unauthenticated } from "./authenticate.js";
import { nodeIdFromSubjectAltName } from "./pki.js";
import type { Revocations } from "./revocations.js";

export interface ExpiredRenewalRequest {
  certPem: string;
  csrPem: string;
  proof: Buffer;
}

/** The node id and serial of the expired certificate; throws UNAUTHENTICATED naming why not. */
export function checkExpiredRenewal(
  req: ExpiredRenewalRequest,
  trustedCas: readonly X509Certificate[],
  revocations: Pick<Revocations, "isRevoked">,
  graceMs: number,
  nowMs = Date.now(),
): { nodeId: string; serial: string; notAfterMs: number } {
  const refuse = (why: string) => unauthenticated(`renewal after expiry refused: ${why}`);
  if (req.certPem.length > 2 * MAX_CERT_BYTES) throw refuse("certificate too large");
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(req.certPem);
  } catch {
    throw refuse("not a certificate");
  }
  if (cert.ca || !trustedCas.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey))) throw refuse("not issued by the cluster CA");
  const nodeId = nodeIdFromSubjectAltName(cert.subjectAltName);
  if (!nodeId) throw refuse("not a node certificate");
  const notAfterMs = Date.parse(cert.validTo);
  if (nowMs < Date.parse(cert.validFrom)) throw refuse("certificate not valid yet");
  // Longer away than a lifetime past expiry: join again (a new join token, a new node id).
  if (nowMs > notAfterMs + graceMs) throw refuse(`certificate of ${nodeId} expired at ${cert.validTo}, more than ${graceMs} ms ago: join again with a join token`);
  if (revocations.isRevoked(nodeId, cert.serialNumber)) throw refuse(`node ${nodeId} was removed: join again with a new join token`);
  if (!checkRenewalProof(cert.publicKey, req.csrPem, req.proof)) throw refuse("the proof is not a signature by the certificate's key over the CSR");
  return { nodeId, serial: cert.serialNumber.toLowerCase(), notAfterMs };
}
