// One contract, every implementation: the in-memory state store and bus, and the Redis store
// and Kafka bus against the real Redis and the real broker.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentBus } from "../../../common/agent-bus.js";
import { KafkaAgentBus } from "../../../common/kafka-agent-bus.js";
import type { Assignment } from "../../../common/types.js";
import type { SubmissionRecord, TaskBus, TaskEventRecord } from "../../../scheduler/backends/bus.js";
import { resultCacheKey } from "../../../scheduler/backends/codec.js";
import { KafkaBus } from "../../../scheduler/backends/kafka-bus.js";
import { MemoryStateStore } from "../../../scheduler/backends/memory.js";
import { MemoryBus } from "../../../scheduler/backends/memory-bus.js";
import { RedisLease } from "../../../scheduler/backends/redis-lease.js";
import { connectRedis } from "../../../scheduler/backends/redis-connection.js";
import { RedisStateStore } from "../../../scheduler/backends/redis-state.js";
import { outputName, type StateStore, type StoredResult } from "../../../scheduler/backends/types.js";
import { auditedRedis, type AuditedRedis } from "../../helpers/redis-audit.js";
import { testServices, uniquePrefix, until } from "../../helpers/services.js";

let services: { kafka: string; redis: string };
// The Redis side runs on a private server under MONITOR, so the last test can check that every
// command it sent is one operators grant (scheduler/backends/redis-commands.ts).
let audit: AuditedRedis;
beforeAll(async () => {
  services = testServices();
  audit = await auditedRedis();
});
afterAll(async () => audit?.stop());

const kernelId = "a".repeat(64);
const result = (taskIndex: number, nodeId: string, text: string): StoredResult => ({
  taskIndex,
  state: "TASK_STATE_SUCCEEDED",
  output: Buffer.from(text),
  nodeId,
  attempt: 1,
  runMs: 1.5,
});

const stores: [string, () => Promise<StateStore>][] = [
  ["memory", async () => new MemoryStateStore()],
  ["redis", async () => RedisStateStore.connect({ url: audit.url, prefix: uniquePrefix("c") })],
];

describe.each(stores)("StateStore contract: %s", (_name, open) => {
  let store: StateStore;
  beforeAll(async () => {
    store = await open();
  });
  afterAll(async () => store.close());

  it("stores a kernel once", async () => {
    const k = { kernelId, name: "k", kind: "KERNEL_KIND_WASM" as const, entry: "run", abi: "distx-1", sizeBytes: 3, registeredAtMs: 1, module: Buffer.from([0, 97, 115]) };
    expect(await store.putKernel(k)).toEqual({ created: true });
    expect(await store.putKernel(k)).toEqual({ created: false });
    const got = await store.getKernel(kernelId);
    expect(got?.name).toBe("k");
    expect(Buffer.compare(got!.module, k.module)).toBe(0);
    expect(await store.getKernel("b".repeat(64))).toBeUndefined();
  });

  it("keeps kernels per tenant: two registrations share the bytes; the bytes go with the last one", async () => {
    const id = randomUUID().replace(/-/g, "").padEnd(64, "0");
    const k = { kernelId: id, name: "shared", kind: "KERNEL_KIND_WASM" as const, entry: "run", abi: "distx-1", sizeBytes: 4, registeredAtMs: 10, module: Buffer.from([0, 97, 115, 109]) };
    const reg = (tenant: string, at: number) => ({ tenant, kernelId: id, name: "shared", sizeBytes: 4, registeredAtMs: at, lastUsedAtMs: at });
    // No bytes, no registration.
    expect(await store.putKernelRegistration(reg("t1", 10))).toBeUndefined();
    expect(await store.getKernelRegistration("t1", id)).toBeUndefined();
    await store.putKernel(k);
    expect(await store.putKernelRegistration(reg("t1", 10))).toEqual({ created: true });
    expect(await store.putKernelRegistration(reg("t1", 20))).toEqual({ created: false }); // again: a use, not a second one
    expect(await store.putKernelRegistration(reg("t2", 30))).toEqual({ created: true });
    expect(await store.getKernelRegistration("t1", id)).toMatchObject({ tenant: "t1", kernelId: id, sizeBytes: 4, registeredAtMs: 10, lastUsedAtMs: 20 });
    expect(await store.getKernelRegistration("t3", id)).toBeUndefined();
    expect((await store.listKernelRegistrations("t2")).map((r) => r.kernelId)).toEqual([id]);
    expect(await store.listKernelRegistrations("t3")).toEqual([]);

    // Use moves the last-use time forward only; expiry lists the least recently used first.
    await store.touchKernelRegistration("t2", id, 100);
    await store.touchKernelRegistration("t2", id, 50);
    expect((await store.getKernelRegistration("t2", id))?.lastUsedAtMs).toBe(100);
    expect(await store.staleKernelRegistrations(100, 10)).toEqual(expect.arrayContaining([{ tenant: "t1", kernelId: id }]));
    expect(await store.staleKernelRegistrations(100, 10)).not.toEqual(expect.arrayContaining([{ tenant: "t2", kernelId: id }]));
    expect(await store.staleKernelRegistrations(101, 1000)).toEqual(expect.arrayContaining([{ tenant: "t1", kernelId: id }, { tenant: "t2", kernelId: id }]));

    expect(await store.deleteKernelRegistration("t1", id)).toEqual({ deleted: true, contentDeleted: false });
    expect(await store.deleteKernelRegistration("t1", id)).toEqual({ deleted: false, contentDeleted: false });
    expect(await store.getKernel(id)).toBeDefined(); // t2 still holds it
    expect(await store.deleteKernelRegistration("t2", id)).toEqual({ deleted: true, contentDeleted: true });
    expect(await store.getKernel(id)).toBeUndefined();
    expect(await store.staleKernelRegistrations(Number.MAX_SAFE_INTEGER, 1000)).not.toEqual(expect.arrayContaining([{ tenant: "t2", kernelId: id }]));
    // A touch of a deleted registration does not bring it back.
    await store.touchKernelRegistration("t2", id, 200);
    expect(await store.getKernelRegistration("t2", id)).toBeUndefined();
  });

  it("records a task's result exactly once; the first one wins", async () => {
    const job = `job-${randomUUID()}`;
    const outcomes = await Promise.all([0, 1, 2, 3, 4].map((i) => store.recordResult(job, result(7, `node-${i}`, `r${i}`))));
    expect(outcomes.filter(Boolean)).toHaveLength(1);
    const winner = outcomes.indexOf(true);
    await store.recordResult(job, result(2, "n", "two"));
    const got = await store.getResults(job, 0, 10);
    expect(got.map((r) => r.taskIndex)).toEqual([2, 7]);
    expect(got[1]!.output.toString()).toBe(`r${winner}`);
    expect(got[1]!.nodeId).toBe(`node-${winner}`);
    expect(await store.getResults(job, 3, 5)).toHaveLength(1); // indexes 3..7
  });

  it("keeps a result's kernel log lines, a failed task's too", async () => {
    const job = `job-${randomUUID()}`;
    const logs = ["hello é \\x1b", "[distx] log cap reached (4096 bytes, 100 lines per task): dropped 1 more line(s), 9 byte(s)"];
    await store.recordResult(job, { ...result(0, "n", "out"), logs });
    await store.recordResult(job, { ...result(1, "n", ""), state: "TASK_STATE_FAILED", error: { code: "TRAP", message: "kernel trapped" }, logs: ["about to trap"] });
    await store.recordResult(job, result(2, "n", "quiet"));
    const got = await store.getResults(job, 0, 10);
    expect(got.map((r) => r.logs)).toEqual([logs, ["about to trap"], undefined]);
    expect(got[1]!.error?.code).toBe("TRAP");
  });

  it("keeps unfinished jobs' inputs and metadata until they finish", async () => {
    const job = `job-${randomUUID()}`;
    const inputs = [Buffer.from("x"), Buffer.alloc(0), Buffer.from([1, 2, 3])];
    await store.putJob(job, inputs, JSON.stringify({ id: job }));
    expect(await store.unfinishedJobs()).toContain(job);
    expect(await store.getJobMeta(job)).toBe(JSON.stringify({ id: job }));
    expect((await store.getJobInputs(job))!.map((b) => [...b])).toEqual(inputs.map((b) => [...b]));
    await store.markJobFinished(job);
    expect(await store.unfinishedJobs()).not.toContain(job);
    expect(await store.getJobInputs(job)).toBeUndefined();
    expect(await store.getJobMeta(job)).toBe(JSON.stringify({ id: job }));
  });

  it("keeps outputs by reference with the job's results: per attempt, first upload wins, none after the job finished", async () => {
    const job = `job-${randomUUID()}`;
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 5);
    for (let i = 0; i < bytes.length; i += 4096) bytes[i] = i % 251;
    const ref = { sha256: "b".repeat(64), sizeBytes: bytes.length };
    // An upload comes in pieces; each putOutput commits one.
    const uploads: string[] = [];
    const upload = async (data: Buffer) => {
      const id = randomUUID();
      uploads.push(id);
      for (let off = 0; off < data.length; off += 1024 * 1024) await store.appendUpload(id, data.subarray(off, off + 1024 * 1024));
      return id;
    };
    // Not an unfinished job (never put, or finished): nothing is kept.
    expect(await store.putOutput(job, outputName(0, 1), ref, await upload(bytes))).toBe(false);
    await store.putJob(job, [Buffer.alloc(0), Buffer.alloc(0)], JSON.stringify({ id: job }));
    expect(await store.putOutput(job, outputName(0, 1), ref, await upload(bytes))).toBe(true);
    // The same attempt again (a retried upload) keeps the first; another attempt has its own.
    expect(await store.putOutput(job, outputName(0, 1), { ...ref, sha256: "c".repeat(64) }, await upload(Buffer.from("other")))).toBe(true);
    expect(await store.putOutput(job, outputName(0, 2), { sha256: "d".repeat(64), sizeBytes: 2 }, await upload(Buffer.from("xy")))).toBe(true);
    expect(await store.getOutputRef(job, outputName(0, 1))).toEqual(ref);
    expect(await store.getOutputRef(job, outputName(1, 1))).toBeUndefined();
    const MiB = 1024 * 1024;
    const parts: Buffer[] = [];
    for (let off = 0; off < bytes.length; off += MiB) parts.push((await store.readOutput(job, outputName(0, 1), off, Math.min(MiB, bytes.length - off)))!);
    expect(Buffer.concat(parts).equals(bytes)).toBe(true);
    expect((await store.readOutput(job, outputName(0, 2), 0, 2))!.toString()).toBe("xy");
    await store.recordResult(job, { ...result(0, "n", ""), outputRef: ref });
    expect((await store.getResults(job, 0, 1))[0]!.outputRef).toEqual(ref);
    await store.markJobFinished(job);
    // Kept after the job finished (results are), but no new one is taken.
    expect(await store.putOutput(job, outputName(1, 1), ref, await upload(bytes))).toBe(false);
    // An upload dropped before it was kept leaves nothing.
    const dropped = await upload(Buffer.from("gone"));
    await store.dropUpload(dropped);
    expect(await store.putOutput(job, outputName(1, 1), ref, dropped)).toBe(false);
    expect((await store.readOutput(job, outputName(0, 1), 0, 4))!.equals(bytes.subarray(0, 4))).toBe(true);
    if (store instanceof RedisStateStore) {
      // They expire with the results.
      const keys = await audit.checks.keys(`*:job:${job}:out*`);
      expect(keys.length).toBe(3);
      for (const k of keys) expect(await audit.checks.ttl(k)).toBeGreaterThan(0);
      // Uploads that lost (same attempt again, job finished) left nothing behind.
      for (const id of uploads) expect(await audit.checks.keys(`*:upload:${id}`)).toEqual([]);
    } else {
      await store.deleteJob(job);
      expect(await store.readOutput(job, outputName(0, 1), 0, 4)).toBeUndefined();
    }
  });

  it("trims its finished jobs to the newest N, and a later trim makes good one that never ran", async () => {
    const jobs: string[] = [];
    for (let i = 0; i < 5; i++) {
      const job = `job-${randomUUID()}`;
      await store.putJob(job, [Buffer.from("x")], JSON.stringify({ id: job }));
      await store.markJobFinished(job);
      jobs.push(job);
      await new Promise((r) => setTimeout(r, 3)); // distinct finish times
    }
    await store.trimFinishedJobs(3);
    expect(await store.finishedJobs(100)).toEqual(jobs.slice(2).reverse());
    // Two more finish with no trim in between (it failed, say): the next trim catches up.
    for (let i = 0; i < 2; i++) {
      const job = `job-${randomUUID()}`;
      await store.putJob(job, [Buffer.from("x")], JSON.stringify({ id: job }));
      await store.markJobFinished(job);
      jobs.push(job);
      await new Promise((r) => setTimeout(r, 3));
    }
    await store.trimFinishedJobs(3);
    expect(await store.finishedJobs(100)).toEqual(jobs.slice(4).reverse());
    await store.trimFinishedJobs(0);
    expect(await store.finishedJobs(100)).toEqual([]);
  });

  it("serves the result cache by (kernel, seed, input)", async () => {
    const input = Buffer.from(randomUUID());
    const k1 = resultCacheKey(kernelId, 1, input);
    expect(resultCacheKey(kernelId, 2, input)).not.toBe(k1);
    expect(await store.getCachedResults([k1])).toEqual([undefined]);
    await store.putCachedResult(k1, Buffer.from("out"));
    const [hit, miss] = await store.getCachedResults([k1, resultCacheKey(kernelId, 2, input)]);
    expect(hit?.toString()).toBe("out");
    expect(miss).toBeUndefined();
  });
});

/** Each bus with its agents' side (the scheduler's TaskBus has none). */
const buses: [string, () => Promise<{ bus: TaskBus; agents: AgentBus }>][] = [
  [
    "memory",
    async () => {
      const bus = new MemoryBus();
      return { bus, agents: bus.agents };
    },
  ],
  [
    "kafka",
    async () => {
      const bus = await KafkaBus.connect({ brokers: [services.kafka], topicPrefix: uniquePrefix("b"), partitions: 2, assignmentPartitions: 4, connectTimeoutMs: 5000 });
      return { bus, agents: await KafkaAgentBus.open(bus.agentRouting) };
    },
  ],
];

describe.each(buses)("TaskBus contract: %s", (_name, open) => {
  let bus: TaskBus;
  let agents: AgentBus;
  const submissions: SubmissionRecord[] = [];
  const events: TaskEventRecord[] = [];
  let failNextEvent = true;
  beforeAll(async () => {
    ({ bus, agents } = await open());
    await bus.consume({
      submission: async (rec) => void submissions.push(rec),
      event: async (rec) => {
        // The first delivery fails: at-least-once means the record comes again.
        if (failNextEvent) {
          failNextEvent = false;
          throw new Error("not recorded");
        }
        events.push(rec);
      },
      load: () => undefined,
    });
  }, 60_000);
  afterAll(async () => {
    await agents.close();
    await bus.close();
  });

  it("delivers a durably appended submission with its inputs", async () => {
    const rec: SubmissionRecord = {
      jobId: `job-${randomUUID()}`,
      submittedAtMs: 1,
      kernelId,
      priority: 3,
      timeoutMs: 0,
      maxAttempts: 0,
      name: "n",
      skipCache: true,
      needs: { cores: 1, memoryBytes: 3 * 2 ** 30, gpu: false, nodeSelector: { zone: "a" }, gpuFallback: "GPU_FALLBACK_CPU" },
      inputs: [Buffer.from("in0"), Buffer.from("in1")],
      tenant: "t1",
      tokenId: "0123456789abcdef",
    };
    await bus.appendSubmission(rec);
    const got = await until("the submission", async () => submissions.find((s) => s.jobId === rec.jobId), 30_000, 20);
    expect(got.inputs.map((b) => b.toString())).toEqual(["in0", "in1"]);
    expect(got.needs.nodeSelector).toEqual({ zone: "a" });
    expect(got.skipCache).toBe(true);
    // Every field survives the log's wire form (the proto's JobSubmission).
    expect({ ...got, inputs: [] }).toEqual({ ...rec, inputs: [] });
  });

  it("routes assignments to their node only, in order, singly or in batches", async () => {
    const got = new Map<string, Assignment[]>();
    const nodes = ["node-aaaa1111", "node-bbbb2222"];
    const subs = await Promise.all(nodes.map((n) => agents.subscribeAssignments(n, (a) => got.set(n, [...(got.get(n) ?? []), a]))));
    try {
      const assignment = (n: string, i: number) => ({ jobId: `job-${n}`, taskIndex: i, attempt: 1, kernelId, kind: "KERNEL_KIND_WASM" as const, input: Buffer.from([i]), timeoutMs: 5, memoryLimitBytes: "0" });
      for (let i = 0; i < 10; i++) for (const n of nodes) bus.publishAssignments(n, [assignment(n, i)]);
      for (const n of nodes) bus.publishAssignments(n, Array.from({ length: 10 }, (_, k) => assignment(n, 10 + k)));
      await until("both nodes' assignments", async () => nodes.every((n) => (got.get(n)?.length ?? 0) >= 20), 30_000, 20);
      await new Promise((r) => setTimeout(r, 200));
      for (const n of nodes) {
        const list = got.get(n)!;
        expect(list.map((a) => a.taskIndex)).toEqual([...Array(20).keys()]);
        expect(list.every((a) => a.jobId === `job-${n}`)).toBe(true);
        expect([...list[5]!.input]).toEqual([5]);
      }
    } finally {
      await Promise.all(subs.map((s) => s.close()));
    }
  }, 60_000);

  it("delivers a cancel behind the assignments published before it, never ahead of them", async () => {
    const node = `node-${randomUUID().slice(0, 8)}`;
    const seen: string[] = [];
    const sub = await agents.subscribeAssignments(
      node,
      (a) => seen.push(`assign ${a.taskIndex}`),
      (c) => seen.push(`cancel ${c.jobId} [${c.taskIndexes.join(",")}]`),
    );
    try {
      const assignment = (i: number) => ({ jobId: "job-c", taskIndex: i, attempt: 1, kernelId, kind: "KERNEL_KIND_WASM" as const, input: Buffer.from([i]), timeoutMs: 5, memoryLimitBytes: "0" });
      // Published in one turn, as the scheduler does when it cancels right after a dispatch round.
      bus.publishAssignments(node, [assignment(0), assignment(1), assignment(2)]);
      bus.publishCancel(node, { jobId: "job-c", taskIndexes: [1, 2] });
      bus.publishAssignments(node, [assignment(3)]);
      await until("everything for the node", async () => seen.length >= 5, 30_000, 20);
      await new Promise((r) => setTimeout(r, 200));
      expect(seen).toEqual(["assign 0", "assign 1", "assign 2", "cancel job-c [1,2]", "assign 3"]);
    } finally {
      await sub.close();
    }
  }, 60_000);

  it("redelivers a task event whose handler failed (offsets move only after recording)", async () => {
    const jobId = `job-${randomUUID()}`;
    const update = { jobId, taskIndex: 4, attempt: 2, state: "TASK_STATE_SUCCEEDED" as const, output: Buffer.from("ok"), error: null, runMs: 3, waitMs: 0, backend: "wasm" };
    // One batch of two: the first delivery of the first fails, so the batch comes again.
    agents.publishEvents("node-x", [update, { ...update, taskIndex: 5, output: Buffer.from("ok5") }]);
    const got = await until("the event after a failed first delivery", async () => events.find((e) => e.update.jobId === jobId && e.update.taskIndex === 4), 30_000, 20);
    expect(got.nodeId).toBe("node-x");
    expect(got.update.output.toString()).toBe("ok");
    expect(got.update.attempt).toBe(2);
    const second = await until("the second update of the batch", async () => events.find((e) => e.update.jobId === jobId && e.update.taskIndex === 5), 30_000, 20);
    expect(second.update.output.toString()).toBe("ok5");
    expect(second.update.state).toBe("TASK_STATE_SUCCEEDED");
  }, 60_000);
});

describe("Redis lease", () => {
  it("one holder at a time; a standby takes over when the holder stops renewing", async () => {
    const redis = await connectRedis(audit.url);
    const key = `${uniquePrefix("l")}:leader`;
    const a = new RedisLease(redis, key, 600);
    const b = new RedisLease(redis, key, 600);
    try {
      await a.acquire();
      expect(await b.tryAcquire()).toBe(false);
      await new Promise((r) => setTimeout(r, 900)); // a renews: still held
      expect(await b.tryAcquire()).toBe(false);
      const lost = new Promise((r) => a.once("lost", r));
      await a.release(); // as if a died
      await b.acquire();
      expect(await redis.get(key)).toBe(b.owner);
      void lost;
    } finally {
      await b.release();
      await redis.quit();
    }
  });

  it("a bad Redis address is a clear error within seconds", async () => {
    const t0 = Date.now();
    await expect(RedisStateStore.connect({ url: "redis://127.0.0.1:1", connectTimeoutMs: 1500 })).rejects.toThrow(/cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it("a bad broker address is a clear error within seconds", async () => {
    const t0 = Date.now();
    await expect(KafkaBus.connect({ brokers: ["127.0.0.1:1"], topicPrefix: "x", partitions: 1, assignmentPartitions: 1, connectTimeoutMs: 1500 })).rejects.toThrow(/cannot reach Kafka at 127\.0\.0\.1:1/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

describe("Redis commands", () => {
  it("every command the store and the lease sent is one the operators' ACL grants", async () => {
    // A failure names the commands to add to REDIS_COMMANDS (scheduler/backends/redis-commands.ts).
    expect(await audit.notGranted()).toEqual([]);
    // Not vacuous: the blob, output, script and lease paths ran against the audited server.
    for (const c of ["append", "getrange", "eval", "hsetnx", "rename", "persist", "set", "zadd", "scard"]) expect(audit.seen).toContain(c);
  });
});
