// The duplicate check's fingerprint (scheduler/idempotency.ts) hashes the small fields and each
// input's digest, computed once: the same request gives the same fingerprint, any change to what
// would run gives another, and a fingerprint recorded by an older release still matches its retry.
import { describe, expect, it } from "vitest";
import { knownSha256, sha256Hex } from "../../common/hash.js";
import { legacyFingerprint, requestFingerprint, sameRequest } from "../../scheduler/idempotency.js";
import { planBlobs } from "../../scheduler/jobs/blob-inputs.js";
import { resultCacheKey } from "../../scheduler/backends/codec.js";
import type { SubmitRequest } from "../../scheduler/core.js";

const base = (): SubmitRequest => ({
  kernelId: "a".repeat(64),
  inputs: [Buffer.from("first input"), Buffer.alloc(70_000, 3), Buffer.from("")],
  sharedInputs: [{ name: "b", data: Buffer.alloc(100, 9) }],
  needs: { cores: 1, nodeSelector: { zone: "a", tier: "x" } },
  priority: 0,
  timeoutMs: 1000,
  maxAttempts: 3,
  name: "job",
});

describe("the duplicate check's fingerprint", () => {
  it("is the same for the same request, with fresh copies of its bytes", () => {
    const a = base();
    const b = base();
    b.needs.nodeSelector = { tier: "x", zone: "a" };
    expect(requestFingerprint(a)).toBe(requestFingerprint(b));
    expect(sameRequest(requestFingerprint(a), requestFingerprint(b), b)).toBe(true);
  });

  it("changes with any byte of any input, the split between inputs, a shared input, or a small field", () => {
    const fp = requestFingerprint(base());
    const variants: ((r: SubmitRequest) => void)[] = [
      (r) => (r.inputs[1] = Buffer.concat([Buffer.alloc(69_999, 3), Buffer.from([4])])),
      (r) => (r.inputs = [Buffer.from("first inpu"), Buffer.concat([Buffer.from("t"), r.inputs[1]!]), r.inputs[2]!]),
      (r) => r.inputs.pop(),
      (r) => (r.sharedInputs![0]!.data = Buffer.alloc(100, 8)),
      (r) => (r.sharedInputs![0]!.name = "c"),
      (r) => (r.sharedInputs = []),
      (r) => (r.priority = 1),
      (r) => (r.needs.nodeSelector = { zone: "b", tier: "x" }),
      (r) => (r.skipCache = true),
    ];
    for (const change of variants) {
      const r = base();
      change(r);
      const other = requestFingerprint(r);
      expect(other, change.toString()).not.toBe(fp);
      expect(sameRequest(fp, other, r), change.toString()).toBe(false);
    }
  });

  it("accepts the retry of a request recorded with the older fingerprint over the bytes, and nothing else", () => {
    const old = legacyFingerprint(base());
    expect(old).not.toMatch(/^v2:/);
    expect(sameRequest(old, requestFingerprint(base()), base())).toBe(true);
    const changed = base();
    changed.inputs[0] = Buffer.from("other input");
    expect(sameRequest(old, requestFingerprint(changed), changed)).toBe(false);
    // A job recorded without a request fingerprint never matches.
    expect(sameRequest("", requestFingerprint(base()), base())).toBe(false);
  });

  it("hashes each input once: blob references and cache keys reuse the digest", () => {
    const r = base();
    requestFingerprint(r);
    for (const input of r.inputs) expect(knownSha256.get(input)).toBe(sha256Hex(input));
    // Seen as known, the digest is what planBlobs uses (a wrong one recorded would show here).
    const fake = Buffer.alloc(70_000, 5);
    knownSha256.set(fake, "f".repeat(64));
    expect(planBlobs([fake], undefined, 64 * 1024).inputRefs![0]!.sha256).toBe("f".repeat(64));
    expect(planBlobs(r.inputs, undefined, 64 * 1024).inputRefs![1]!.sha256).toBe(sha256Hex(r.inputs[1]!));
    // Cache keys still tell seeds and inputs apart.
    const k = resultCacheKey(r.kernelId, 1, r.inputs[0]!);
    expect(resultCacheKey(r.kernelId, 2, r.inputs[0]!)).not.toBe(k);
    expect(resultCacheKey(r.kernelId, 1, Buffer.from("first inpuT"))).not.toBe(k);
    expect(resultCacheKey(r.kernelId, 1, Buffer.from("first input"))).toBe(k);
  });
});
