// The files of a CA rotation (scheduler/auth/pki.ts): which CA signs, which one issued the
// served certificate, what is trusted at each step, and what a half-written set looks like.
// End to end with a running cluster: test/e2e/security/ca-rotation.test.ts.
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { recordSigner } from "../../common/record-signature.js";
import { createCa, createCsr, ensurePki, loadPki, retireOldCa, rotateCa, signNodeCsr, splitPem } from "../../scheduler/auth/pki.js";
import { RecordVerifier } from "../../scheduler/auth/record-verifier.js";
import { Revocations } from "../../scheduler/auth/revocations.js";

const issuedBy = (certPem: string, caPem: string) => new X509Certificate(certPem).checkIssued(new X509Certificate(caPem));

describe("CA rotation files", () => {
  it("rotate trusts new + old and signs with the new; retire-old serves and trusts only the new", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "distx-ca-"));
    const first = await ensurePki(dir, ["sched.example"]);
    expect(splitPem(first.caPem)).toHaveLength(1);
    await expect(retireOldCa(dir)).rejects.toThrow(/no CA rotation is under way/);

    const { newCaPem, oldCaPem } = await rotateCa(dir);
    const during = await loadPki(dir);
    expect(splitPem(during.caPem).map((c) => c.trim())).toEqual([newCaPem.trim(), oldCaPem.trim()]);
    expect(during.signingCaPem.trim()).toBe(newCaPem.trim());
    expect(during.servingCaPem.trim()).toBe(oldCaPem.trim());
    expect(during.serverCertPem).toBe(first.serverCertPem);
    await expect(rotateCa(dir)).rejects.toThrow(/already under way/);

    // Signed Kafka records: node certificates of either CA are believed during the rotation.
    const verifier = new RecordVerifier(() => splitPem(during.caPem).map((c) => new X509Certificate(c)), Revocations.inMemory());
    for (const [caPem, keyPem] of [[newCaPem, during.caKeyPem], [oldCaPem, first.caKeyPem]] as const) {
      const csr = await createCsr();
      const identity = { keyPem: csr.keyPem, certPem: (await signNodeCsr(caPem, keyPem, csr.csrPem, "node-0000abcd")).certPem };
      const value = Buffer.from("updates");
      expect(await verifier.verify("t", Buffer.from("node-0000abcd"), value, recordSigner(() => identity).headers("t", "node-0000abcd", value))).toEqual({ nodeId: "node-0000abcd" });
    }

    await retireOldCa(dir);
    const after = await loadPki(dir);
    expect(splitPem(after.caPem)).toHaveLength(1);
    expect(after.servingCaPem.trim()).toBe(newCaPem.trim());
    expect(issuedBy(after.serverCertPem, newCaPem)).toBe(true);
    // The new server certificate keeps the names of the old one.
    expect(new X509Certificate(after.serverCertPem).subjectAltName).toMatch(/DNS:sched\.example/);
    expect(new X509Certificate(after.serverCertPem).subjectAltName).toMatch(/IP Address:127\.0\.0\.1/);
  });

  it("refuses a set of files that does not fit together (as a reader may catch one half-written)", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "distx-ca-"));
    const pki = await ensurePki(dir);
    const other = await createCa("other");
    writeFileSync(pki.paths.caKey, other.keyPem);
    await expect(loadPki(dir)).rejects.toThrow(/is not the key of the first CA/);
    writeFileSync(pki.paths.caKey, pki.caKeyPem);
    writeFileSync(pki.paths.caCert, other.certPem);
    await expect(loadPki(dir)).rejects.toThrow();
    writeFileSync(pki.paths.caCert, pki.caPem);
    writeFileSync(pki.paths.serverKey, other.keyPem);
    await expect(loadPki(dir)).rejects.toThrow(/is not the key of/);
    writeFileSync(pki.paths.serverKey, pki.serverKeyPem);
    expect((await loadPki(dir)).serverCertPem).toBe(readFileSync(pki.paths.serverCert, "utf8"));
  });
});
