// Renewal after expiry. An agent stopped (or cut off) past its certificate's notAfter can no
// longer pass the scheduler's TLS check, so it proves instead that it still holds the key of its
// expired certificate: a signature by that key over the new CSR, sent with the certificate in
// RenewCertificateRequest. The scheduler checks it (scheduler/auth/expired-renewal.ts) and
// renews the same node id. The CSR is bound into the proof, so a proof seen once is good only
// for a certificate whose key the sender already holds.
import { createHash, createPrivateKey, sign, verify, type KeyObject } from "node:crypto";

const DOMAIN = Buffer.from("distx-renew-expired-v1\0", "utf8");

function digest(csrPem: string): Buffer {
  return createHash("sha256").update(DOMAIN).update(csrPem, "utf8").digest();
}

/** The proof, signed with the expired certificate's key (keyPem). */
export function renewalProof(keyPem: string, csrPem: string): Buffer {
  return sign("sha256", digest(csrPem), { key: createPrivateKey(keyPem), dsaEncoding: "ieee-p1363" });
}

/** Whether `proof` is a signature by `key` over `csrPem` made by renewalProof. */
export function checkRenewalProof(key: KeyObject, csrPem: string, proof: Buffer): boolean {
  try {
    return verify("sha256", digest(csrPem), { key, dsaEncoding: "ieee-p1363" }, proof);
  } catch {
    return false;
  }
}
