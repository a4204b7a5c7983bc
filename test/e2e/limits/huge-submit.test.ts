// SubmitJob's limits are checked before the request is decoded. One SubmitJob of 40 MB (20
// million empty tasks) exhausted the scheduler's heap and killed it; 2 MB with a million tasks
// stalled its event loop for seconds and lost an agent. Now both get RESOURCE_EXHAUSTED at once.
import * as grpc from "@grpc/grpc-js";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { CHANNEL_OPTIONS, v1 } from "../../../common/proto.js";
import { fixtureKernel } from "../../helpers/fixtures.js";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";
import { MiB, mib, procMemory, schedulerPid } from "../../helpers/rss.js";

let c: TestCluster;
let kernelId = "";

beforeAll(async () => {
  c = await startTestCluster("huge-submit", { agents: 1 });
  ({ kernelId } = await c.client.registerKernel(await fixtureKernel("echo"), { name: "echo" }));
}, 60_000);

afterAll(async () => {
  await c?.stop();
});

/** A SubmitJobRequest's bytes, written directly: kernel_id, then `tasks` empty TaskInputs. */
function submitBytes(tasks: number): Buffer {
  const id = Buffer.from(kernelId);
  const head = Buffer.concat([Buffer.from([0x0a, id.length]), id]);
  // Field 2 (tasks), length 0: an empty TaskInput, two bytes each.
  return Buffer.concat([head, Buffer.alloc(tasks * 2, Buffer.from([0x12, 0x00]))]);
}

function sendRaw(body: Buffer): Promise<grpc.ServiceError | null> {
  const client = new grpc.Client(c.address, grpc.credentials.createSsl(readFileSync(c.cluster.credentialFiles().caFile)), CHANNEL_OPTIONS);
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${c.adminToken}`);
  return new Promise((resolve) =>
    client.makeUnaryRequest("/distributex.v1.DistributeX/SubmitJob", (b: Buffer) => b, (b: Buffer) => b, body, md, { deadline: Date.now() + 60_000 }, (err) => {
      client.close();
      resolve(err);
    }),
  );
}

describe("huge SubmitJob", () => {
  it.each([
    ["40 MB, 20 million empty tasks", 20_000_000],
    ["2 MB, a million empty tasks", 1_000_000],
  ])("%s: a clear RESOURCE_EXHAUSTED, the scheduler stays up and its agent READY", async (_, tasks) => {
    const pid = schedulerPid(c.cluster);
    const before = procMemory(pid, "VmHWM");
    const err = await sendRaw(submitBytes(tasks));
    expect(err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    // Refused from a scan of the raw bytes (submit-precheck.ts; only it counts the tasks of a
    // request that was never decoded and says a retry is useless), not after decoding millions of
    // objects. (Speed is for bench/; this test asserts where the refusal came from, and the memory.)
    expect(err?.details).toBe(`job has ${tasks} tasks; the limit is 100000 (maxTasksPerJob); not retryable: split the job`);
    const peak = procMemory(pid, "VmHWM");
    console.log(`scheduler peak RSS ${mib(before)} → ${mib(peak)}`);
    // The request as received (40 MB, and the chunks it was assembled from: ~80 MB) and nothing
    // decoded from it; decoding 20 million tasks took GBs.
    expect(peak - before).toBeLessThan(160 * MiB);
    expect(c.cluster.processes.find((p) => p.name === "scheduler")!.child.exitCode).toBeNull();
    expect((await c.client.listNodes()).map((n) => n.state)).toEqual(["NODE_STATE_READY"]);
    // And it still runs jobs.
    const input = Buffer.alloc(8);
    const { job } = await c.client.run({ kernelId, inputs: [input] });
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
  }, 120_000);

  it("a big job submitted as a stream of chunks (the typed client's way above 4 MiB) completes", async () => {
    const stub = (c.client as unknown as { stub: { SubmitJobStream: (...a: unknown[]) => unknown } }).stub;
    const streamed = vi.spyOn(stub, "SubmitJobStream");
    const TASKS = 20_000;
    const input = Buffer.alloc(512); // no spins; 10 MB in all
    const { jobId, taskCount } = await c.client.submitJob({ kernelId, inputs: Array.from({ length: TASKS }, () => input) });
    expect(streamed).toHaveBeenCalledTimes(1);
    expect(taskCount).toBe(TASKS);
    expect((await c.client.waitForJob(jobId, undefined, { finalOnly: true })).state).toBe("JOB_STATE_SUCCEEDED");
    const results = await c.client.getResults(jobId);
    expect(results.length).toBe(TASKS);
    expect(results.every((r, i) => r.taskIndex === i && r.output.byteLength === 512)).toBe(true);
  }, 180_000);

  it("a stream over maxTasksPerJob is refused as it arrives, before it ends", async () => {
    const V1 = v1();
    const stub = new V1.DistributeX(c.address, grpc.credentials.createSsl(readFileSync(c.cluster.credentialFiles().caFile)), CHANNEL_OPTIONS);
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${c.adminToken}`);
    const answer = new Promise<grpc.ServiceError | null>((resolve) => {
      const stream = stub.SubmitJobStream(md, (err) => resolve(err));
      stream.write({ header: { kernelId, tasks: [] } });
      // 11 chunks of 10,000 empty tasks, never ended: over the default limit of 100,000.
      for (let i = 0; i < 11; i++) stream.write({ tasks: { items: Array.from({ length: 10_000 }, () => ({ data: Buffer.alloc(0) })) } });
    });
    const err = await answer;
    stub.close();
    expect(err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(err?.details).toMatch(/maxTasksPerJob/);
    expect((await c.client.listNodes()).map((n) => n.state)).toEqual(["NODE_STATE_READY"]);
  }, 60_000);

  it("one stream chunk of 20 million empty tasks is refused before it is decoded", async () => {
    const pid = schedulerPid(c.cluster);
    const before = procMemory(pid, "VmHWM");
    // A SubmitJobChunk's bytes: tasks (field 2) = TaskInputs whose items (field 1) are empty.
    const items = Buffer.alloc(20_000_000 * 2, Buffer.from([0x0a, 0x00]));
    const lenBytes: number[] = [];
    for (let n = items.length; ; n = Math.floor(n / 128)) {
      if (n < 128) {
        lenBytes.push(n);
        break;
      }
      lenBytes.push((n % 128) | 0x80);
    }
    const chunk = Buffer.concat([Buffer.from([0x12, ...lenBytes]), items]);
    const id = Buffer.from(kernelId);
    const header = Buffer.concat([Buffer.from([0x0a, id.length + 2, 0x0a, id.length]), id]);
    const client = new grpc.Client(c.address, grpc.credentials.createSsl(readFileSync(c.cluster.credentialFiles().caFile)), CHANNEL_OPTIONS);
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${c.adminToken}`);
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      const stream = client.makeClientStreamRequest("/distributex.v1.DistributeX/SubmitJobStream", (b: Buffer) => b, (b: Buffer) => b, md, { deadline: Date.now() + 60_000 }, (e) => resolve(e));
      stream.write(header);
      stream.write(chunk);
      stream.end();
    });
    client.close();
    expect(err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(err?.details).toMatch(/20000000 tasks; the limit is/);
    const peak = procMemory(pid, "VmHWM");
    console.log(`scheduler peak RSS ${mib(before)} → ${mib(peak)} (streamed chunk)`);
    expect(peak - before).toBeLessThan(160 * MiB); // the chunk as received, nothing decoded
    expect((await c.client.listNodes()).map((n) => n.state)).toEqual(["NODE_STATE_READY"]);
  }, 60_000);
});
