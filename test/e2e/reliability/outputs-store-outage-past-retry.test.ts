// Outputs by reference while Redis refuses writes for longer than the agent's upload retry
// window (UPLOAD_RETRY_MS, 10 s; Kafka + a private redis-server at maxmemory, noeviction). The
// agent gives up on each upload after its window, so the attempt ends; what must hold: no task is
// lost or reported SUCCEEDED without its output (every kept output is byte-exact and of its
// declared size, no upload is left behind), a task that fails says why and that a retry is safe,
// and once Redis takes writes again the job finishes, its tasks re-run: an outage of the store is
// not the task's fault, so it does not use up the task's attempts.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fixtureKernel } from "../../helpers/fixtures.js";
import { echoInput, MiB } from "../../helpers/outputs.js";
import { outageRig, type OutageRig } from "../../helpers/redis-outage.js";
import { sleep, until } from "../../helpers/services.js";

let rig: OutageRig | undefined;
afterAll(async () => {
  await rig?.stop();
});

/** Longer than the agent's retry window, long enough for two attempts to give up in a row. */
const OUTAGE_MS = 25_000;

describe("outputs by reference while Redis refuses writes for longer than the agent's retry window", () => {
  it("no task is lost or succeeds without its output; the job finishes once Redis is back, with byte-exact outputs", async () => {
    // The rig's lease outlives the outage (renewals are PEXPIRE, which Redis takes at maxmemory).
    rig = await outageRig("outputs-outage-long");
    const { c, redis, prefix } = rig;
    const { kernelId } = await c.client.registerKernel(await fixtureKernel("echo"), { name: "echo" });
    const inputs = [3, 2].map((m) => {
      const b = echoInput(m * MiB + 5);
      b.writeUInt32LE(150_000_000, 0);
      return b;
    });
    // Two attempts: with the outage past two retry windows, a job whose tasks spent an attempt
    // on each window would fail.
    const { jobId } = await c.client.submitJob({ kernelId, inputs, skipResultCache: true, timeoutMs: 120_000, maxAttempts: 2, resources: { memoryBytes: 64 * MiB } });
    await until("a task running", async () => ((await c.client.getJob(jobId)).counts?.running ?? 0) >= 1, 30_000, 20);
    const refusedAt = await rig.refuseWritesAfter(64 * 1024);
    const outs = `${prefix}:job:${jobId}:outs`;
    while (Date.now() - refusedAt < OUTAGE_MS) {
      await rig.expectOutputsWhole(jobId);
      // Nothing succeeds without its output while no output can be kept.
      expect((await c.client.getJob(jobId)).counts?.succeeded ?? 0).toBe(0);
      await sleep(500);
    }
    rig.acceptWrites();
    const backAt = Date.now();
    console.log(`Redis refused ${rig.oomErrors()} writes in ${OUTAGE_MS} ms`);

    const job = await c.client.waitForJob(jobId);
    console.log(`job ${job.state} ${Date.now() - backAt} ms after Redis took writes again`);
    const results = await c.client.getResults(jobId);
    for (const x of results) console.log(`task ${x.taskIndex}: attempt ${x.attempt}, ${x.error ? `${x.error.code}: ${x.error.message}` : `${x.output.byteLength} bytes`}`);
    expect(results.map((x) => x.taskIndex)).toEqual([0, 1]);
    for (const x of results) {
      expect(x.error, `task ${x.taskIndex}`).toBeFalsy();
      expect(Buffer.from(x.output).equals(inputs[x.taskIndex]!), `task ${x.taskIndex}`).toBe(true);
      // Placed again without using up an attempt (maxAttempts 2 would not have covered the outage).
      expect(x.attempt, `task ${x.taskIndex}`).toBe(1);
    }
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    // Each round said why: the store's reason, and that the task runs again.
    const unstored = readFileSync(path.join(c.cluster.logDir!, "scheduler.log"), "utf8").split("\n").filter((l) => l.includes('"event":"task_output_unstored"'));
    console.log(`tasks placed again for the outage: ${unstored.length}`);
    expect(unstored.length).toBeGreaterThanOrEqual(inputs.length);
    expect(unstored[0]).toMatch(/OOM/);
    expect(unstored[0]).toMatch(/without using up an attempt/);
    await rig.expectOutputsWhole(jobId);
    expect(await redis.hlen(outs)).toBeGreaterThanOrEqual(inputs.length);
    await until("no upload left in Redis", async () => (await redis.keys(`${prefix}:upload:*`)).length === 0, 10_000, 100);
  }, 180_000);
});
