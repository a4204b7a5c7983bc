// Records read from Kafka are checked as strictly as the gRPC messages they stand for: a
// node-load record must have the heartbeat NodeLoad's shape; anything else is refused.
import { describe, expect, it } from "vitest";
import { decodeLoadSample } from "../../common/kafka-wire.js";
import { checkLoggedSubmission } from "../../scheduler/submit-validation.js";
import type { SubmissionRecord } from "../../scheduler/backends/bus.js";

const enc = (v: unknown) => Buffer.from(JSON.stringify(v));

describe("node-load records", () => {
  it("accepts what an agent sends, with the proto's defaults filled in", () => {
    const s = decodeLoadSample(enc({ nodeId: "n1", draining: false, load: { cpuUtilization: 0.5, memoryUsedBytes: "1234", runningTasks: 2 } }));
    expect(s.nodeId).toBe("n1");
    expect(s.load).toMatchObject({ cpuUtilization: 0.5, memoryUsedBytes: "1234", runningTasks: 2, queuedTasks: 0, gpuUtilization: 0 });
  });
  it("refuses malformed and oversized records", () => {
    const bad = [
      Buffer.from("not json"),
      enc(null),
      enc([1]),
      enc({ nodeId: 5, draining: false, load: {} }),
      enc({ nodeId: "n", draining: "no", load: {} }),
      enc({ nodeId: "n", draining: false, load: "x" }),
      enc({ nodeId: "n", draining: false, load: { cpuUtilization: "lots" } }),
      enc({ nodeId: "n", draining: false, load: { runningTasks: -1 } }),
      enc({ nodeId: "n", draining: false, load: { memoryUsedBytes: "12abc" } }),
      enc({ nodeId: "x".repeat(300), draining: false, load: {} }),
      enc({ nodeId: "n", draining: false, load: {}, pad: "x".repeat(70_000) }),
    ];
    for (const b of bad) expect(() => decodeLoadSample(b), b.toString().slice(0, 60)).toThrow();
  });
});

describe("submissions records", () => {
  const limits = { maxTasksPerJob: 10, maxJobBytes: 1000, maxTaskTimeoutMs: 60_000 };
  const ok: SubmissionRecord = {
    jobId: "job-0b6f3c2e-9d7a-4c1e-8f00-1234567890ab",
    submittedAtMs: 1,
    kernelId: "a".repeat(64),
    priority: 0,
    timeoutMs: 0,
    maxAttempts: 0,
    name: "",
    skipCache: false,
    needs: { cores: 0, memoryBytes: 0, gpu: false, nodeSelector: {} },
    inputs: [Buffer.alloc(8)],
  };
  it("passes a record the scheduler wrote", () => expect(() => checkLoggedSubmission(ok, limits)).not.toThrow());
  it("refuses what SubmitJob refuses, and ids the scheduler never makes", () => {
    const cases: [Partial<SubmissionRecord>, RegExp][] = [
      [{ priority: 101 }, /priority/],
      [{ priority: 1.5 }, /priority/],
      [{ kernelId: "nope" }, /kernel_id/],
      [{ inputs: [] }, /at least one task/],
      [{ inputs: Array.from({ length: 11 }, () => Buffer.alloc(1)) }, /maxTasksPerJob/],
      [{ inputs: [Buffer.alloc(1001)] }, /maxJobBytes/],
      [{ timeoutMs: 60_001 }, /timeout_ms/],
      [{ maxAttempts: 101 }, /max_attempts/],
      [{ name: "x".repeat(201) }, /name/],
      [{ jobId: "job-1" }, /job_id/],
      [{ submittedAtMs: Number.NaN }, /submitted_at_ms/],
    ];
    for (const [over, msg] of cases) expect(() => checkLoggedSubmission({ ...ok, ...over }, limits), JSON.stringify(over).slice(0, 60)).toThrow(msg);
  });
});
