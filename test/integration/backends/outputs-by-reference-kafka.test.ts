// Outputs by reference on Kafka + Redis (the real broker and the real Redis, real processes):
// tasks with 1-4 MiB outputs upload them to the scheduler, which keeps them in Redis beside the
// job's results; every task-events record stays under 16 KiB (without this they would carry the
// outputs: up to 4 MiB each), a default 4 MiB gRPC client reads every output, the outputs expire
// with the results once the job is finished, and the scheduler does not hold them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { topicNames } from "../../../common/kafka-wire.js";
import { exampleKernels, mandelbrotInput } from "../../../kernels/reference/index.js";
import { exampleWasm, fixtureKernel } from "../../helpers/fixtures.js";
import { blobRig, type BlobRig } from "../../helpers/blob-rig.js";
import { echoInput, MiB, readWithDefaultClient } from "../../helpers/outputs.js";
import { mib, procMemory, schedulerPid } from "../../helpers/rss.js";

/** The stated bound on a task-events record once outputs go by reference. */
const EVENT_RECORD_BOUND = 16 * 1024;
/**
 * Scheduler RSS growth allowed while 256 MiB of outputs pass through it (uploaded, then read
 * back): well under what holding them would take. Most of it is garbage not yet collected: the
 * daemons start with a 128 MiB old space (DAEMON_NODE_FLAGS), and the pieces in flight are 1 MiB.
 */
const MEMORY_BOUND = 160 * 1024 * 1024;

let rig: BlobRig;

beforeAll(async () => {
  rig = await blobRig({ name: "outputs-by-ref-kafka", agents: 1, workersPerAgent: 2 });
}, 90_000);

afterAll(async () => {
  await rig?.stop();
});

describe("outputs by reference on Kafka + Redis", () => {
  it("1-4 MiB outputs: correct bytes, small task-event records, read by a default client, expiring with the results", async () => {
    const { c, redis, prefix } = rig;
    const { kernelId } = await c.client.registerKernel(await fixtureKernel("echo"), { name: "echo" });
    const sizes = [1, 2, 3, 4, 4, 3, 2, 1].map((m) => m * MiB + 3);
    const inputs = sizes.map(echoInput);
    const { job } = await c.client.run({ kernelId, inputs, timeoutMs: 60_000, skipResultCache: true, resources: { memoryBytes: 64 * MiB } });
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

    // The results' Kafka records carry references, not outputs.
    const events = await rig.recordSizes(topicNames(rig.prefix).events, 1);
    console.log(`task-events records: ${events.length}, largest ${Math.max(...events)} bytes`);
    for (const size of events) expect(size).toBeLessThan(EVENT_RECORD_BOUND);

    // Kept once per task in Redis beside the results, expiring with them (the job is finished).
    const keys = await redis.keys(`${prefix}:job:${job.jobId}:out:*`);
    expect(keys).toHaveLength(sizes.length);
    for (const k of [...keys, `${prefix}:job:${job.jobId}:outs`, `${prefix}:job:${job.jobId}:results`]) expect(await redis.ttl(k)).toBeGreaterThan(0);
    for (let i = 0; i < sizes.length; i++) expect(await redis.hstrlen(`${prefix}:job:${job.jobId}:results`, String(i))).toBeLessThan(4096);
  }, 180_000);

  it("the scheduler's memory does not grow with the outputs: 256 MiB of 4 MiB outputs from 48-byte inputs", async () => {
    const { c } = rig;
    const { kernelId } = await c.client.registerKernel(await exampleWasm("mandelbrot"), { name: "mandelbrot" });
    // 1024 x 1024 pixels per task, one iteration: 4 MiB of counts each, almost no compute.
    const inputs = Array.from({ length: 64 }, (_, i) => mandelbrotInput({ x0: -2, y0: -1.5 + i * 0.045, dx: 3 / 1024, dy: 0.045 / 1024, width: 1024, height: 1024, maxIter: 1 }));
    const pid = schedulerPid(c.cluster);
    const before = procMemory(pid, "VmRSS");
    const hwmBefore = procMemory(pid, "VmHWM");
    const { job } = await c.client.run({ kernelId, inputs, timeoutMs: 60_000, skipResultCache: true, resources: { memoryBytes: 64 * MiB } });
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    const results = await c.client.getResults(job.jobId);
    expect(results).toHaveLength(inputs.length);
    for (const r of results) {
      expect(r.output.byteLength).toBe(4 * MiB);
      expect(exampleKernels.mandelbrot!.check(inputs[r.taskIndex]!, r.output).ok).toBe(true);
    }
    const peak = procMemory(pid, "VmHWM");
    console.log(`scheduler RSS ${mib(before)} before (peak so far ${mib(hwmBefore)}), peak ${mib(peak)} after 256 MiB of outputs in and out`);
    expect(peak - before).toBeLessThan(MEMORY_BOUND);
  }, 180_000);
});
