// Defect 1 of the reliability issue: with Redis refusing writes for ~5 s mid-job (maxmemory
// reached, no eviction), results were lost while the job reported SUCCEEDED (Kafka + Redis), or
// the job stayed RUNNING for ever (Redis state, in-memory queue): the core marked a task done in
// memory before its result was stored and never undid it. Every task's result must end stored
// exactly once, the job must reach its final state, and the failed writes must be logged and
// counted. A submission refused by the store meanwhile must not leave a job behind.
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { DistributeXClient } from "../../../client/index.js";
import { LocalCluster } from "../../../cli/local-cluster.js";
import { repoRoot } from "../../../common/paths.js";
import { getExampleKernel } from "../../../kernels/reference/index.js";
import { exampleWasm } from "../../helpers/fixtures.js";
import { freePort, sleep, testServices, uniquePrefix, until } from "../../helpers/services.js";

const example = getExampleKernel("montecarlo_pi");
const TASKS = 400;

let cluster: LocalCluster | undefined;
let redisPort = 0;
afterEach(async () => {
  await cluster?.stop(3000);
  cluster = undefined;
  if (redisPort) spawnSync("redis-cli", ["-p", String(redisPort), "shutdown", "nosave"]);
  redisPort = 0;
});

/** A private Redis: this test makes it refuse writes, which must not disturb anyone else's. */
async function startRedis(): Promise<string> {
  redisPort = await freePort();
  execFileSync("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--daemonize", "yes", "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"]);
  await until("private redis", async () => spawnSync("redis-cli", ["-p", String(redisPort), "ping"]).stdout?.toString().includes("PONG"), 10_000, 50);
  return `redis://127.0.0.1:${redisPort}`;
}

const refuseWrites = (on: boolean) => execFileSync("redis-cli", ["-p", String(redisPort), "config", "set", "maxmemory", on ? "1" : "0"]);

async function scrape(admin: string, name: string): Promise<number> {
  const text = await (await fetch(`http://${admin}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? Number.NaN : Number(line.split(" ").pop());
}

describe.each([
  { mode: "kafka + redis", kafka: true },
  { mode: "redis state + in-memory queue", kafka: false },
])("Redis refusing writes for 5 s mid-job ($mode)", ({ kafka, mode }) => {
  it("every result ends stored exactly once and the job ends SUCCEEDED; failed writes are logged and counted", async () => {
    const redisUrl = await startRedis();
    const prefix = uniquePrefix("rw");
    const logs = path.join(repoRoot(), "test-output", "logs", `redis-writes-${prefix}`);
    const schedulerArgs = [
      "--state", "redis", "--redis-url", redisUrl, "--redis-prefix", prefix,
      // Longer than the outage: a lease that cannot be renewed is another fault, not this one.
      "--lease-ttl-ms", "20000",
      "--heartbeat-interval-ms", "200", "--agent-timeout-ms", "3000", "--drain-grace-ms", "0",
      ...(kafka ? ["--bus", "kafka", "--kafka-brokers", testServices().kafka, "--kafka-topic-prefix", prefix] : []),
    ];
    cluster = new LocalCluster({ agents: 2, workersPerAgent: 1, logs, schedulerArgs, agentArgs: () => ["--no-calibrate", "--connect-timeout-ms", "0"] });
    const address = await cluster.start();
    const client = new DistributeXClient(address);
    const redis = new Redis(redisUrl);
    try {
      const { kernelId } = await client.registerKernel(await exampleWasm("montecarlo_pi"));
      const inputs = example.makeTasks({ tasks: TASKS, size: TASKS * 1_500_000, seed: 7 });
      const { jobId } = await client.submitJob({ kernelId, inputs, skipResultCache: true, name: mode });
      await until("50 tasks done", async () => (await client.getJob(jobId)).counts!.succeeded >= 50, 60_000, 50);

      refuseWrites(true);
      const outageStart = Date.now();
      if (!kafka) {
        // A submission the store refuses fails with UNAVAILABLE and leaves no job behind.
        const before = (await client.listJobs()).length;
        // One attempt (the typed client would otherwise retry this idempotent call until Redis is back).
        const once = new DistributeXClient(address, { retry: false });
        await expect(once.submitJob({ kernelId, inputs: inputs.slice(0, 2), skipResultCache: true })).rejects.toThrow(/UNAVAILABLE|could not record/i);
        once.close();
        expect((await client.listJobs()).length).toBe(before);
      }
      await sleep(5000 - (Date.now() - outageStart));
      refuseWrites(false);

      const job = await client.waitForJob(jobId);
      expect(job.state).toBe("JOB_STATE_SUCCEEDED");
      expect(job.counts!.succeeded).toBe(TASKS);
      await until("the job's final state stored", async () => (await redis.zscore(`${prefix}:jobs:unfinished`, jobId)) === null, 10_000);
      expect(await redis.hlen(`${prefix}:job:${jobId}:results`)).toBe(TASKS);
      const results = await client.getResults(jobId);
      expect(results).toHaveLength(TASKS);
      expect(new Set(results.map((r) => r.taskIndex)).size).toBe(TASKS);
      for (const r of results) {
        expect(r.state).toBe("TASK_STATE_SUCCEEDED");
        // The JS reference costs as much as the kernel: one task in eight is enough to show outputs are right.
        if (r.taskIndex % 8 === 0) expect(example.check(inputs[r.taskIndex]!, r.output).ok, `task ${r.taskIndex}`).toBe(true);
      }
      if (!kafka) expect((await client.listJobs()).map((j) => j.jobId)).toEqual([jobId]);

      // Logged (rate-limited) and counted.
      const log = readFileSync(path.join(logs, "scheduler.log"), "utf8");
      const warned = log.split("\n").filter((l) => l.includes('"event":"store_write_failed"'));
      expect(warned.length).toBeGreaterThan(0);
      expect(warned.length).toBeLessThanOrEqual(2 * 8); // at most about one a second per kind of write
      expect(await scrape(await cluster.adminAddress("scheduler"), "distx_store_write_failures_total")).toBeGreaterThan(0);
    } finally {
      client.close();
      await redis.quit();
    }
  }, 180_000);
});
