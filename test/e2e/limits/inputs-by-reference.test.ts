// Inputs by reference (in-memory backends, real processes, real gRPC over loopback): inputs of
// 1 MiB and 16 MiB are stored once on the scheduler, assignments carry only their sha256 and
// size, and the agent fetches each distinct input once over FetchBlob, in chunks, whatever
// number of tasks read it. A node that does not hold the task cannot read the blob.
import * as grpc from "@grpc/grpc-js";
import { createHash, randomFillSync } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { histogram } from "../../../kernels/reference/histogram.js";
import { exampleWasm, fixtureKernel } from "../../helpers/fixtures.js";
import { metricOf } from "../../helpers/blob-rig.js";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";
import { rogueAgent } from "../../helpers/outputs.js";

const MiB = 1024 * 1024;
let c: TestCluster;

beforeAll(async () => {
  c = await startTestCluster("inputs-by-ref", { agents: 1, workersPerAgent: 2 });
}, 60_000);

afterAll(async () => {
  await c?.stop();
});

/** A histogram input of `bytes` bytes of random u32 values, binned by their top byte. */
function randomHistogramInput(bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  randomFillSync(b);
  b.writeUInt32LE((bytes - 8) / 4, 0);
  b.writeUInt32LE(24, 4);
  return b;
}

const agentMetric = (name: string) => metricOf(c.cluster, "agent-0", name);

describe("inputs by reference", () => {
  it("1 MiB and 16 MiB inputs: correct outputs, each distinct input fetched once by the agent", async () => {
    const { kernelId } = await c.client.registerKernel(await exampleWasm("histogram"), { name: "histogram" });
    const small = randomHistogramInput(1 * MiB);
    const big = randomHistogramInput(16 * MiB);
    const fetchesBefore = await agentMetric("distx_agent_blob_fetches_total");
    const bytesBefore = await agentMetric("distx_agent_blob_fetched_bytes_total");
    // Four tasks, two distinct inputs: each is read by two tasks.
    const inputs = [small, big, small, big];
    const { job } = await c.client.run({ kernelId, inputs, timeoutMs: 120_000 });
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    const results = await c.client.getResults(job.jobId);
    expect(results.map((r) => r.taskIndex)).toEqual([0, 1, 2, 3]);
    for (const r of results) expect(Buffer.from(r.output).equals(Buffer.from(histogram.reference(inputs[r.taskIndex]!)))).toBe(true);
    // Once per distinct input on this agent, not once per task.
    expect((await agentMetric("distx_agent_blob_fetches_total")) - fetchesBefore).toBe(2);
    expect((await agentMetric("distx_agent_blob_fetched_bytes_total")) - bytesBefore).toBe(17 * MiB);
  }, 180_000);

  it("inputs below the threshold still travel inline (no fetch)", async () => {
    const { kernelId } = await c.client.registerKernel(await exampleWasm("histogram"), { name: "histogram" });
    const fetchesBefore = await agentMetric("distx_agent_blob_fetches_total");
    const inputs = [randomHistogramInput(4096), randomHistogramInput(60 * 1024)];
    const { job } = await c.client.run({ kernelId, inputs });
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    const results = await c.client.getResults(job.jobId);
    for (const r of results) expect(Buffer.from(r.output).equals(Buffer.from(histogram.reference(inputs[r.taskIndex]!)))).toBe(true);
    expect(await agentMetric("distx_agent_blob_fetches_total")).toBe(fetchesBefore);
  }, 60_000);

  it("a node that does not hold the task gets PERMISSION_DENIED for its input", async () => {
    const { kernelId } = await c.client.registerKernel(await fixtureKernel("spin"), { name: "spin" });
    const input = Buffer.alloc(256 * 1024, 7);
    const sha256 = createHash("sha256").update(input).digest("hex");
    const { jobId } = await c.client.submitJob({ kernelId, inputs: [input], timeoutMs: 30_000, maxAttempts: 1 });
    // The real agent holds it (it fetched the input and spins).
    for (let i = 0; i < 200 && (await c.client.getJob(jobId)).counts?.running !== 1; i++) await new Promise((r) => setTimeout(r, 50));
    expect((await c.client.getJob(jobId)).counts?.running).toBe(1);

    // Another node, with a certificate of its own from a join token.
    const rogue = await rogueAgent(c);
    const fetchAs = (req: { sha256: string; jobId: string; taskIndex: number }) =>
      new Promise<{ code: grpc.status; bytes: number }>((resolve) => {
        let bytes = 0;
        const call = rogue.FetchBlob(req, { deadline: Date.now() + 10_000 });
        call.on("data", (d: { data: Buffer }) => (bytes += d.data.byteLength));
        call.on("error", (err: grpc.ServiceError) => resolve({ code: err.code, bytes }));
        call.on("end", () => resolve({ code: grpc.status.OK, bytes }));
      });
    try {
      expect(await fetchAs({ sha256, jobId, taskIndex: 0 })).toEqual({ code: grpc.status.PERMISSION_DENIED, bytes: 0 });
      // Nor by naming another job, or a task that does not exist.
      expect((await fetchAs({ sha256, jobId: "job-nope", taskIndex: 0 })).code).toBe(grpc.status.PERMISSION_DENIED);
      expect((await fetchAs({ sha256, jobId, taskIndex: 5 })).code).toBe(grpc.status.PERMISSION_DENIED);
      expect((await fetchAs({ sha256: "x", jobId, taskIndex: 0 })).code).toBe(grpc.status.INVALID_ARGUMENT);
    } finally {
      rogue.close();
      await c.client.cancelJob(jobId);
    }
  }, 60_000);
});
