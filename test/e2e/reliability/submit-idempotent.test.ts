// Defect 6: SubmitJob is idempotent under a client-chosen request id. A first attempt whose reply
// is lost (deadline exceeded while the store is slow) or that fails half way (Redis refusing
// writes during submit, with and without the Kafka journal) is retried by the typed client with
// the same id: the caller gets one job id, and the job runs exactly once.
import path from "node:path";
import { readFile } from "node:fs/promises";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { DistributeXClient, DistributeXError } from "../../../client/index.js";
import { LocalCluster } from "../../../cli/local-cluster.js";
import { exampleKernels } from "../../../kernels/reference/index.js";
import { privateRedis, repo, sleep, testServices, uniquePrefix, until, type PrivateRedis } from "../../helpers/private-redis.js";

const saxpy = exampleKernels.saxpy!;
let cluster: LocalCluster | undefined;
let redis: PrivateRedis | undefined;
const clients: DistributeXClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await cluster?.stop(3000);
  cluster = undefined;
  redis?.stop();
  redis = undefined;
});

async function start(tag: string, backend: "memory" | "redis" | "kafka+redis"): Promise<DistributeXClient> {
  const prefix = uniquePrefix(tag);
  const args = ["--heartbeat-interval-ms", "200", "--agent-timeout-ms", "3000", "--drain-grace-ms", "0", "--lease-ttl-ms", "20000"];
  if (backend !== "memory") {
    redis = await privateRedis();
    args.push("--state", "redis", "--redis-url", redis.url, "--redis-prefix", prefix);
  }
  if (backend === "kafka+redis") args.push("--bus", "kafka", "--kafka-brokers", testServices().kafka, "--kafka-topic-prefix", prefix);
  cluster = new LocalCluster({ agents: 1, workersPerAgent: 1, logs: path.join(repo, "test-output", "logs", `idem-${prefix}`), schedulerArgs: args, agentArgs: () => ["--no-calibrate"] });
  const address = await cluster.start();
  const c = new DistributeXClient(address, { timeoutMs: 400, retry: { deadlineMs: 30_000 } });
  clients.push(c);
  return c;
}

async function kernel(c: DistributeXClient): Promise<string> {
  return (await c.registerKernel(await readFile(path.join(repo, "build/kernels/saxpy.wasm")), { name: "saxpy" })).kernelId;
}

async function expectRanOnce(c: DistributeXClient, jobId: string, inputs: Uint8Array[], jobsBefore: number): Promise<void> {
  const job = await c.waitForJob(jobId);
  expect(job.state).toBe("JOB_STATE_SUCCEEDED");
  // One job for the one submit, however many attempts it took.
  expect((await c.listJobs(100)).length).toBe(jobsBefore + 1);
  const results = await c.getResults(jobId);
  expect(results.length).toBe(inputs.length);
  for (const r of results) expect(saxpy.check(inputs[r.taskIndex]!, r.output).ok).toBe(true);
}

describe("SubmitJob request ids", () => {
  it("the same id twice is one job; the same id with another request is ALREADY_EXISTS", async () => {
    const c = await start("idem", "memory");
    const kernelId = await kernel(c);
    const inputs = saxpy.makeTasks({ tasks: 3, size: 48, seed: 1 });
    const a = await c.submitJob({ kernelId, inputs, requestId: "order-42" });
    const b = await c.submitJob({ kernelId, inputs, requestId: "order-42" });
    expect(b).toEqual(a);
    const err = await c.submitJob({ kernelId, inputs: inputs.slice(1), requestId: "order-42" }).then(() => undefined, (e: unknown) => e);
    expect((err as DistributeXError).codeName).toBe("ALREADY_EXISTS");
    expect((err as DistributeXError).details).toMatch(/different request/);
    const bad = await c.submitJob({ kernelId, inputs, requestId: "has space" }).then(() => undefined, (e: unknown) => e);
    expect((bad as DistributeXError).codeName).toBe("INVALID_ARGUMENT");
    await expectRanOnce(c, a.jobId, inputs, 0);
  }, 60_000);

  it("a first attempt past its deadline (the store is slow) is retried with the same id: one job, run once", async () => {
    const c = await start("idemdl", "redis");
    const kernelId = await kernel(c);
    const inputs = saxpy.makeTasks({ tasks: 4, size: 64, seed: 2 });
    // Writes stall for 1.5 s: the first attempt (400 ms deadline) times out while the scheduler goes on.
    expect(redis!.cli("CLIENT", "PAUSE", "1500", "WRITE")).toContain("OK");
    const t0 = Date.now();
    const { jobId } = await c.submitJob({ kernelId, inputs, skipResultCache: true });
    expect(Date.now() - t0).toBeGreaterThan(400);
    await expectRanOnce(c, jobId, inputs, 0);
  }, 60_000);

  for (const backend of ["redis", "kafka+redis"] as const) {
    it(`Redis refusing writes during submit (${backend}): the client retries with the same id; one job, run once`, async () => {
      const c = await start(backend === "redis" ? "idemr" : "idemkr", backend);
      const kernelId = await kernel(c);
      const inputs = saxpy.makeTasks({ tasks: 4, size: 64, seed: 3 });
      // Warm up (the kernel's kind is cached, the agent has the kernel), and let that job end first.
      await c.waitForJob((await c.submitJob({ kernelId, inputs: inputs.slice(0, 1), skipResultCache: true })).jobId);
      const admin = new Redis(redis!.url);
      try {
        // maxmemory reached, no eviction: every write is refused with OOM for 2 s.
        await admin.config("SET", "maxmemory-policy", "noeviction");
        await admin.config("SET", "maxmemory", "1");
        const submitted = c.submitJob({ kernelId, inputs, skipResultCache: true });
        await sleep(2000);
        await admin.config("SET", "maxmemory", "0");
        const { jobId } = await submitted;
        await expectRanOnce(c, jobId, inputs, 1);
        // Exactly one stored record per task.
        await until("results stored", async () => (await admin.keys(`*${jobId}*results*`)).length > 0, 10_000);
        const [key] = await admin.keys(`*${jobId}*results*`);
        expect(await admin.hlen(key!)).toBe(inputs.length);
      } finally {
        await admin.quit();
      }
    }, 90_000);
  }
});
