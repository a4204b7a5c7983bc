// Outputs by reference while Redis refuses writes in the middle of an upload (Kafka + Redis, a
// private redis-server): once a job's tasks are running, maxmemory is set just above what Redis
// holds (noeviction), so the first 1 MiB piece of an upload is stored and the next is refused
// (OOM). Redis then refuses writes for 4 s. Expected: the agent is told the failure is
// transient ("retry is safe", UNAVAILABLE) and retries its upload, so an outage shorter than its
// retry window (UPLOAD_RETRY_MS, 10 s) costs no attempt; no half-written output is ever kept
// (every output key holds exactly its declared size, no upload is left behind); once Redis takes
// writes again the job ends SUCCEEDED with byte-exact outputs; the scheduler's memory stays bounded.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fixtureKernel } from "../../helpers/fixtures.js";
import { echoInput, MiB, readWithDefaultClient } from "../../helpers/outputs.js";
import { outageRig, type OutageRig } from "../../helpers/redis-outage.js";
import { mib, procMemory, schedulerPid } from "../../helpers/rss.js";
import { sleep, until } from "../../helpers/services.js";

let rig: OutageRig | undefined;
afterAll(async () => {
  await rig?.stop();
});

const OUTAGE_MS = 4000;
/** Scheduler RSS growth allowed: the 8 MiB of inputs and outputs passing through, a piece per upload, and garbage not yet collected. */
const MEMORY_BOUND = 96 * MiB;

describe("outputs by reference while Redis refuses writes mid-upload (kafka + redis)", () => {
  it("the upload is retried, not the attempt; no half-written output is kept; the job ends with byte-exact outputs", async () => {
    rig = await outageRig("outputs-redis-refuses");
    const { c, redis, prefix } = rig;
    const { kernelId } = await c.client.registerKernel(await fixtureKernel("echo"), { name: "echo" });
    // Four outputs of 2-3 MiB (several pieces each); each task spins first, so the limit is set before any upload.
    const inputs = [3, 2, 3, 2].map((m) => {
      const b = echoInput(m * MiB + 5);
      b.writeUInt32LE(150_000_000, 0);
      return b;
    });
    const pid = schedulerPid(c.cluster);
    const before = procMemory(pid, "VmRSS");
    const { jobId } = await c.client.submitJob({ kernelId, inputs, skipResultCache: true, timeoutMs: 60_000, maxAttempts: 3, resources: { memoryBytes: 64 * MiB } });
    await until("a task running", async () => ((await c.client.getJob(jobId)).counts?.running ?? 0) >= 1, 30_000, 20);
    expect((await c.client.getJob(jobId)).counts?.succeeded ?? 0).toBe(0);
    // Room for about half a piece more: the first piece of an upload goes in, the next is refused.
    const refusedAt = await rig.refuseWritesAfter(MiB / 2);
    // While writes are refused, no output key holds anything but its declared size.
    const outs = `${prefix}:job:${jobId}:outs`;
    while (Date.now() - refusedAt < OUTAGE_MS) {
      await rig.expectOutputsWhole(jobId);
      await sleep(200);
    }
    rig.acceptWrites();
    console.log(`Redis refused ${rig.oomErrors()} writes in ${OUTAGE_MS} ms`);

    const job = await c.client.waitForJob(jobId);
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    const results = await c.client.getResults(jobId);
    expect(results.map((x) => x.taskIndex)).toEqual([0, 1, 2, 3]);
    for (const x of results) {
      expect(Buffer.from(x.output).equals(inputs[x.taskIndex]!), `task ${x.taskIndex}`).toBe(true);
      // The upload was retried within the agent: the outage cost no attempt.
      expect(x.attempt, `task ${x.taskIndex}`).toBe(1);
    }
    const plain = await readWithDefaultClient(c, jobId);
    expect(plain.byRef).toBe(inputs.length);
    for (const [i, out] of plain.outputs) expect(out.equals(inputs[i]!), `task ${i}`).toBe(true);
    await rig.expectOutputsWhole(jobId);
    expect(await redis.hlen(outs)).toBe(inputs.length);
    // Refused uploads left nothing behind (dropped at once, not at their 10-minute expiry).
    await until("no upload left in Redis", async () => (await redis.keys(`${prefix}:upload:*`)).length === 0, 10_000, 100);

    // The agent was told the failure was transient, and why.
    const agentLog = readFileSync(path.join(c.cluster.logDir!, "agent-0.log"), "utf8").split("\n").filter((l) => l.includes('"event":"output_upload_retry"'));
    expect(agentLog.length).toBeGreaterThan(0);
    expect(agentLog[0]).toMatch(/retry is safe/);
    expect(agentLog[0]).toMatch(/OOM/);
    const peak = procMemory(pid, "VmHWM");
    console.log(`scheduler RSS ${mib(before)} before, peak ${mib(peak)}; agent upload retries logged: ${agentLog.length}`);
    expect(peak - before).toBeLessThan(MEMORY_BOUND);
  }, 120_000);
});
