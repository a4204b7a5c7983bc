// Inputs by reference and shared inputs survive a failover: Kafka + Redis, an active scheduler
// and a standby, a gemm job whose A blocks go by reference and whose B is a shared input,
// submitted while no agent is up; the active scheduler is killed (-9) before any task runs. The
// standby restores the job (its references from Redis), an agent then joins, fetches the blobs
// from the new scheduler (B once) and every output is right; the blobs leave Redis afterwards.
import path from "node:path";
import { readFile } from "node:fs/promises";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { DistributeXClient } from "../../../client/index.js";
import { LocalCluster, waitForListening, type ClusterProcess } from "../../../cli/local-cluster.js";
import { gemm } from "../../../kernels/reference/gemm.js";
import { freePort, repo, testServices, uniquePrefix, until } from "../../helpers/services.js";

let cluster: LocalCluster | undefined;
let redis: Redis | undefined;
afterAll(async () => {
  await cluster?.stop(3000);
  await redis?.quit();
});

async function agentMetric(c: LocalCluster, name: string): Promise<number> {
  const admin = await c.adminAddress("agent-0");
  const scrape = () => fetch(`http://${admin}/metrics`).then((r) => r.text());
  const text = await scrape().catch(scrape);
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(" ")[1]) : NaN;
}

describe("blobs across a failover", () => {
  it("a job with inputs by reference and a shared input, its scheduler killed before it ran, completes on the standby", async () => {
    const { kafka, redis: redisUrl } = testServices();
    redis = new Redis(redisUrl);
    const prefix = uniquePrefix("blobfo");
    const ports = [await freePort(), await freePort()];
    cluster = new LocalCluster({ agents: 0, logs: path.join(repo, "test-output", "logs", `blob-failover-${prefix}`) });
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
      const { kernelId } = await client.registerKernel(await readFile(path.join(repo, "build/kernels/gemm.wasm")), { name: "gemm" });
      // 256²: each A block (64 rows) is 64 KiB + its header, at the by-reference threshold; B is 256 KiB.
      const { inputs, shared } = gemm.shared!.makeTasks({ tasks: 4, size: 256, seed: 9 });
      const { jobId } = await client.submitJob({ kernelId, inputs, sharedInputs: shared });
      expect((await redis.keys(`${prefix}:blob:*`)).filter((k) => !k.endsWith(":jobs")).length).toBe(5);
      schedulers[0]!.child.kill("SIGKILL");

      cluster.startAgent(0, ["--workers", "2", "--no-calibrate", "--connect-timeout-ms", "0"]);
      const job = await until("the job to finish on the standby", async () => {
        const j = await client.getJob(jobId);
        return ["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"].includes(j.state) ? j : undefined;
      }, 90_000, 300);
      expect(job.state).toBe("JOB_STATE_SUCCEEDED");
      const results = await client.getResults(jobId);
      expect(results.length).toBe(4);
      for (const r of results) expect(gemm.check(gemm.shared!.inline(inputs[r.taskIndex]!, [shared[0]!.data]), r.output).ok, `task ${r.taskIndex}`).toBe(true);
      // B once, and each A block once.
      expect(await agentMetric(cluster, "distx_agent_blob_fetches_total")).toBe(5);
      await until("the job's blobs to leave Redis", async () => (await redis!.keys(`${prefix}:blob:*`)).length === 0, 10_000, 100);
    } finally {
      client.close();
    }
  }, 180_000);
});
