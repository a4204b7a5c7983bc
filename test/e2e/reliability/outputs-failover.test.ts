// Outputs by reference across a scheduler failover: Kafka + Redis, an active scheduler and a
// standby, a job of 16 tasks with 1 MiB outputs running on one agent; the active scheduler is
// killed (-9) once a few tasks have finished, with others running or uploading. The standby takes
// over, the agent's uploads and results go to it, and every task ends with exactly one result
// whose output (read back by reference) is right.
import { afterAll, describe, expect, it } from "vitest";
import { fixtureKernel } from "../../helpers/fixtures.js";
import { failoverRig, type FailoverRig } from "../../helpers/blob-rig.js";
import { echoInput, MiB } from "../../helpers/outputs.js";
import { until } from "../../helpers/services.js";

let rig: FailoverRig | undefined;
afterAll(async () => {
  await rig?.stop();
});

describe("outputs by reference across a failover", () => {
  it("a job of 1 MiB outputs whose scheduler is killed mid-way completes on the standby, one correct result per task", async () => {
    rig = await failoverRig("outputs-failover");
    const { cluster, schedulers, client, redis, prefix } = rig;
    const { kernelId } = await client.registerKernel(await fixtureKernel("echo"), { name: "echo" });
    // Each task spins a little first (echo's first u32), so the kill finds some running.
    const inputs = Array.from({ length: 16 }, () => {
      const b = echoInput(MiB + 17);
      b.writeUInt32LE(60_000_000, 0);
      return b;
    });
    cluster.startAgent(0, ["--workers", "2", "--no-calibrate", "--connect-timeout-ms", "0"]);
    const { jobId } = await client.submitJob({ kernelId, inputs, skipResultCache: true, timeoutMs: 60_000, maxAttempts: 5, resources: { memoryBytes: 32 * MiB } });
    await until("a few tasks to finish on the first scheduler", async () => ((await client.getJob(jobId)).counts?.succeeded ?? 0) >= 3, 60_000, 50);
    schedulers[0]!.child.kill("SIGKILL");

    const job = await rig.finalJob(jobId, 120_000);
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    expect(job.counts?.succeeded).toBe(inputs.length);
    const results = await client.getResults(jobId);
    expect(results.map((r) => r.taskIndex)).toEqual(inputs.map((_, i) => i));
    for (const r of results) {
      expect(r.outputRef, `task ${r.taskIndex}`).toBeTruthy();
      expect(Buffer.from(r.output).equals(inputs[r.taskIndex]!), `task ${r.taskIndex}`).toBe(true);
    }
    // One recorded result per task in Redis, each naming an output kept there.
    expect(await redis.hlen(`${prefix}:job:${jobId}:results`)).toBe(inputs.length);
    const kept = await redis.hkeys(`${prefix}:job:${jobId}:outs`);
    for (const r of results) expect(kept).toContain(`${r.taskIndex}.${r.attempt}`);
    console.log(`outputs kept: ${kept.length} for ${inputs.length} tasks (attempts re-run after the failover keep their own)`);
  }, 240_000);
});
