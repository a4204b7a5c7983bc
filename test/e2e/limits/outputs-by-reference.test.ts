// Outputs by reference (in-memory backends, real processes, real gRPC over loopback): tasks whose
// outputs are 1-4 MiB upload them to the scheduler in chunks (UploadOutput), the results carry
// only their sha256 and size, and a plain gRPC client with the default 4 MiB receive limit reads
// every output in chunks of at most 1 MiB (GetResultOutput); the typed client does so itself.
// A node that does not hold the task cannot upload its output.
import * as grpc from "@grpc/grpc-js";
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixtureKernel } from "../../helpers/fixtures.js";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";
import { echoInput, MiB, readWithDefaultClient, rogueAgent, uploadAs } from "../../helpers/outputs.js";
import { mib, procMemory, schedulerPid } from "../../helpers/rss.js";

let c: TestCluster;
let echo = "";

beforeAll(async () => {
  c = await startTestCluster("outputs-by-ref", { agents: 1, workersPerAgent: 2 });
  ({ kernelId: echo } = await c.client.registerKernel(await fixtureKernel("echo"), { name: "echo" }));
}, 60_000);

afterAll(async () => {
  await c?.stop();
});

describe("outputs by reference", () => {
  it("1-4 MiB outputs: correct bytes through the typed client and a default 4 MiB client; scheduler memory bounded", async () => {
    const sizes = [1, 2, 3, 4, 4, 3, 2, 1].map((m) => m * MiB + 3);
    const inputs = sizes.map(echoInput);
    const pid = schedulerPid(c.cluster);
    const before = procMemory(pid, "VmRSS");
    const { job } = await c.client.run({ kernelId: echo, inputs, timeoutMs: 60_000, skipResultCache: true, resources: { memoryBytes: 64 * MiB } });
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    const results = await c.client.getResults(job.jobId);
    expect(results.map((r) => r.taskIndex)).toEqual(sizes.map((_, i) => i));
    for (const r of results) {
      expect(r.outputRef?.sizeBytes).toBe(String(sizes[r.taskIndex]));
      expect(Buffer.from(r.output).equals(inputs[r.taskIndex]!)).toBe(true);
    }
    const plain = await readWithDefaultClient(c, job.jobId);
    expect(plain.byRef).toBe(sizes.length);
    expect(plain.largestMessage).toBeLessThanOrEqual(MiB);
    for (const [i, out] of plain.outputs) expect(out.equals(inputs[i]!)).toBe(true);
    expect(plain.outputs.size).toBe(sizes.length);
    // The in-memory store keeps the 20 MiB of outputs (and held the inputs until the end); the
    // rest is the uploads in flight (at most two at a time here) and the SubmitJobStream chunks.
    const peak = procMemory(pid, "VmHWM");
    const kept = sizes.reduce((a, b) => a + b, 0);
    console.log(`scheduler RSS ${mib(before)} before, peak ${mib(peak)}; ${mib(kept)} of outputs kept, ${mib(kept)} of inputs held while it ran`);
    expect(peak - before).toBeLessThan(2 * kept + 64 * MiB);
  }, 120_000);

  it("outputs below outputByRefBytes still travel inline", async () => {
    const inputs = [echoInput(64 * 1024), echoInput(200 * 1024)];
    const { job } = await c.client.run({ kernelId: echo, inputs, skipResultCache: true });
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    const plain = await readWithDefaultClient(c, job.jobId);
    expect(plain.byRef).toBe(0);
    for (const [i, out] of plain.outputs) expect(out.equals(inputs[i]!)).toBe(true);
  }, 60_000);

  it("a node that does not hold the task cannot upload its output (PERMISSION_DENIED)", async () => {
    const { kernelId } = await c.client.registerKernel(await fixtureKernel("spin"), { name: "spin" });
    const { jobId } = await c.client.submitJob({ kernelId, inputs: [Buffer.alloc(16)], timeoutMs: 30_000, maxAttempts: 1 });
    for (let i = 0; i < 200 && (await c.client.getJob(jobId)).counts?.running !== 1; i++) await new Promise((r) => setTimeout(r, 50));
    expect((await c.client.getJob(jobId)).counts?.running).toBe(1);
    const rogue = await rogueAgent(c);
    const data = Buffer.alloc(512 * 1024, 9);
    const sha256 = createHash("sha256").update(data).digest("hex");
    try {
      // The attempt the real agent holds; claiming the real node's id in the header changes nothing.
      const holder = (await c.client.listNodes()).find((n) => n.assignedTasks > 0)!.nodeId;
      expect(await uploadAs(rogue, { jobId, taskIndex: 0, attempt: 1 }, data, sha256)).toBe(grpc.status.PERMISSION_DENIED);
      expect(await uploadAs(rogue, { jobId, taskIndex: 0, attempt: 1, nodeId: holder }, data, sha256)).toBe(grpc.status.PERMISSION_DENIED);
      expect(await uploadAs(rogue, { jobId: "job-nope", taskIndex: 0, attempt: 1 }, data, sha256)).toBe(grpc.status.PERMISSION_DENIED);
      expect(await uploadAs(rogue, { jobId, taskIndex: 3, attempt: 1 }, data, sha256)).toBe(grpc.status.PERMISSION_DENIED);
    } finally {
      rogue.close();
      await c.client.cancelJob(jobId);
    }
  }, 60_000);
});
