// Outputs by reference across a scheduler failover: Kafka + Redis, an active scheduler and a
// standby, a job of 16 tasks with 1 MiB outputs running on one agent; the active scheduler is
// killed (-9) once a few tasks have finished, with others running or uploading. The standby takes
// over, the agent's uploads and results go to it, and every task ends with exactly one result
// whose output (read back by reference) is right.
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { DistributeXClient } from "../../../client/index.js";
import { LocalCluster, waitForListening, type ClusterProcess } from "../../../cli/local-cluster.js";
import { fixtureKernel } from "../../helpers/fixtures.js";
import { echoInput, MiB } from "../../helpers/outputs.js";
import { freePort, repo, testServices, uniquePrefix, until } from "../../helpers/services.js";

let cluster: LocalCluster | undefined;
let redis: Redis | undefined;
afterAll(async () => {
  await cluster?.stop(3000);
  await redis?.quit();
});

describe("outputs by reference across a failover", () => {
  it("a job of 1 MiB outputs whose scheduler is killed mid-way completes on the standby, one correct result per task", async () => {
    const { kafka, redis: redisUrl } = testServices();
    redis = new Redis(redisUrl);
    const prefix = uniquePrefix("outfo");
    const ports = [await freePort(), await freePort()];
    cluster = new LocalCluster({ agents: 0, logs: path.join(repo, "test-output", "logs", `outputs-failover-${prefix}`) });
    const args = [
      "--bus", "kafka", "--state", "redis", "--kafka-brokers", kafka, "--kafka-topic-prefix", prefix, "--redis-url", redisUrl, "--redis-prefix", prefix,
      "--lease-ttl-ms", "2000", "--agent-timeout-ms", "3000", "--drain-grace-ms", "0",
    ];
    const schedulers: ClusterProcess[] = [];
    schedulers.push(cluster.spawnProcess("scheduler-a", ["scheduler", "--port", String(ports[0]), ...args]));
    await waitForListening(schedulers[0]!, 30_000);
    schedulers.push(cluster.spawnProcess("scheduler-b", ["scheduler", "--port", String(ports[1]), ...args]));
    const addresses = ports.map((p) => `127.0.0.1:${p}`).join(",");
    cluster.address = addresses;
    const client = new DistributeXClient(addresses, { retry: { deadlineMs: 60_000 } });
    try {
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

      const job = await until("the job to finish on the standby", async () => {
        const j = await client.getJob(jobId);
        return ["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"].includes(j.state) ? j : undefined;
      }, 120_000, 300);
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
    } finally {
      client.close();
    }
  }, 240_000);
});
