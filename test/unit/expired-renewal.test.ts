// Renewal after expiry (common/renewal-proof.ts, scheduler/auth/expired-renewal.ts): an expired
// node certificate renews its node id only with a signature by its key over the new CSR, from the
// cluster CA, not removed, and within the grace after notAfter. Real keys and certificates from
// the cluster PKI code. End to end: test/e2e/security/paused-across-renewal.test.ts.
import { X509Certificate } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { renewalProof } from "../../common/renewal-proof.js";
import { checkExpiredRenewal } from "../../scheduler/auth/expired-renewal.js";
import { createCa, createCsr, signNodeCsr } from "../../scheduler/auth/pki.js";

const NODE = "node-aaaaaaaa";
const LIFETIME_MS = 60_000;
const GRACE_MS = 30 * 86_400_000;
let ca: { certPem: string; keyPem: string };
let old: { certPem: string; keyPem: string; notAfterMs: number };
let next: { csrPem: string; keyPem: string };
const none = { isRevoked: () => false };

beforeAll(async () => {
  ca = await createCa();
  const csr = await createCsr();
  const cert = await signNodeCsr(ca.certPem, ca.keyPem, csr.csrPem, NODE, LIFETIME_MS);
  old = { certPem: cert.certPem, keyPem: csr.keyPem, notAfterMs: cert.notAfterMs };
  next = await createCsr();
});

const cas = () => [new X509Certificate(ca.certPem)];
const check = (req: { certPem?: string; csrPem?: string; proof?: Buffer }, nowMs: number, revocations = none) =>
  checkExpiredRenewal({ certPem: old.certPem, csrPem: next.csrPem, proof: renewalProof(old.keyPem, next.csrPem), ...req }, cas(), revocations, GRACE_MS, nowMs);

describe("renewal after expiry", () => {
  it("an expired certificate with a proof of its key renews the same node id", () => {
    const res = check({}, old.notAfterMs + 3_600_000);
    expect(res.nodeId).toBe(NODE);
    expect(res.notAfterMs).toBe(old.notAfterMs);
  });

  it("is refused without the key, for another CSR, from another CA, for a removed node, or too long after expiry", async () => {
    const later = old.notAfterMs + 1000;
    const other = await createCsr();
    // A proof by another key (whoever copied the certificate, not the key).
    expect(() => check({ proof: renewalProof(other.keyPem, next.csrPem) }, later)).toThrow(/not a signature by the certificate's key/);
    // A proof seen once, replayed for a CSR of the replayer's key.
    expect(() => check({ csrPem: other.csrPem }, later)).toThrow(/not a signature/);
    expect(() => check({ proof: Buffer.alloc(64) }, later)).toThrow(/not a signature/);
    // A certificate for the node id from a CA of the attacker's own.
    const rogue = await createCa("rogue");
    const csr = await createCsr();
    const forged = await signNodeCsr(rogue.certPem, rogue.keyPem, csr.csrPem, NODE, LIFETIME_MS);
    expect(() => check({ certPem: forged.certPem, proof: renewalProof(csr.keyPem, next.csrPem) }, later)).toThrow(/not issued by the cluster CA/);
    expect(() => check({}, later, { isRevoked: () => true })).toThrow(/was removed/);
    expect(() => check({}, old.notAfterMs + GRACE_MS + 1)).toThrow(/join again/);
    expect(() => check({ certPem: "not a certificate" }, later)).toThrow(/not a certificate/);
    // The CA's own certificate is not a node's.
    expect(() => check({ certPem: ca.certPem }, later)).toThrow(/not issued by the cluster CA/);
  });

  it("refusals are UNAUTHENTICATED", () => {
    try {
      check({ proof: Buffer.alloc(64) }, old.notAfterMs + 1000);
      expect.unreachable();
    } catch (err) {
      expect((err as { code?: number }).code).toBe(16);
    }
  });
});
