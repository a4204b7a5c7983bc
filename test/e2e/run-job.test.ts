// RunJob: submit and a final-only watch on one call (the typed client's runJob). Real processes,
// real gRPC over loopback with TLS and a token.
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DistributeXError, type JobEvent } from "../../client/index.js";
import { exampleKernels } from "../../kernels/reference/index.js";
import { startTestCluster, type TestCluster } from "../helpers/cluster.js";
import { exampleWasm } from "../helpers/fixtures.js";

const saxpy = exampleKernels.saxpy!;
let t: TestCluster;
let kernelId: string;

beforeAll(async () => {
  t = await startTestCluster("run-job");
  kernelId = (await t.client.registerKernel(await exampleWasm("saxpy"), { name: "saxpy" })).kernelId;
});

afterAll(async () => {
  await t?.stop();
});

/** Runs and records what the caller saw: each task's outcome (by index) and the job snapshots. */
async function runAndRecord(inputs: Uint8Array[], extra: { requestId?: string; skipResultCache?: boolean } = {}) {
  const outcomes = new Map<number, number>();
  const snapshots: string[] = [];
  const job = await t.client.runJob({ kernelId, inputs, ...extra }, (ev: JobEvent) => {
    if (ev.task) outcomes.set(ev.task.taskIndex, (outcomes.get(ev.task.taskIndex) ?? 0) + 1);
    if (ev.job) snapshots.push(ev.job.state);
  });
  return { job, outcomes, snapshots };
}

describe("RunJob", () => {
  it("runs a job on one call: every task's outcome once, then the final snapshot, and the results are right", async () => {
    const inputs = saxpy.makeTasks({ tasks: 12, size: 256, seed: 7 });
    const { job, outcomes, snapshots } = await runAndRecord(inputs, { skipResultCache: true });
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    expect([...outcomes.keys()].sort((a, b) => a - b)).toEqual([...Array(12).keys()]);
    expect([...outcomes.values()].every((n) => n === 1)).toBe(true);
    expect(snapshots.at(-1)).toBe("JOB_STATE_SUCCEEDED");
    const results = await t.client.getResults(job.jobId);
    for (const r of results) expect(saxpy.check(inputs[r.taskIndex]!, r.output).ok).toBe(true);
  });

  it("a retry with the same request id runs nothing new and still gets every outcome of the finished job", async () => {
    const inputs = saxpy.makeTasks({ tasks: 5, size: 64, seed: 8 });
    const requestId = `run-job-retry-${Date.now()}`;
    const first = await runAndRecord(inputs, { requestId, skipResultCache: true });
    const jobsBefore = (await t.client.listJobs(1000)).length;
    const again = await runAndRecord(inputs, { requestId, skipResultCache: true });
    expect(first.job.jobId).toMatch(/^job-/);
    expect(again.job.jobId).toBe(first.job.jobId);
    expect(again.job.state).toBe("JOB_STATE_SUCCEEDED");
    expect((await t.client.listJobs(1000)).length).toBe(jobsBefore);
    expect(again.outcomes.size).toBe(5);
  });

  it("a job whose results all come from the cache (it ends as it is submitted) still reports every outcome", async () => {
    const inputs = saxpy.makeTasks({ tasks: 4, size: 64, seed: 9 });
    await runAndRecord(inputs);
    const cached = await runAndRecord(inputs);
    expect(cached.job.state).toBe("JOB_STATE_SUCCEEDED");
    expect([...cached.outcomes.keys()].sort()).toEqual([0, 1, 2, 3]);
  });

  it("a bad request fails the call with the status SubmitJob gives, and creates no job", async () => {
    const jobsBefore = (await t.client.listJobs(1000)).length;
    const err = await t.client.runJob({ kernelId: "0".repeat(64), inputs: [Buffer.alloc(12)] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DistributeXError);
    expect((err as DistributeXError).code).toBe(grpc.status.NOT_FOUND);
    expect((err as DistributeXError).message).toMatch(/kernel/);
    const bad = await t.client.runJob({ kernelId: "not-a-kernel-id", inputs: [Buffer.alloc(12)] }).catch((e: unknown) => e);
    expect((bad as DistributeXError).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect((await t.client.listJobs(1000)).length).toBe(jobsBefore);
  });
});
