// putJob is one script whose bytes are built once (scheduler/backends/redis-prepared.ts): sent as
// EVALSHA, and as EVAL where Redis lost its script cache (a restart, SCRIPT FLUSH), the inputs
// landing as encodeBuffers framed them, refs and metadata with them.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisStateStore } from "../../../scheduler/backends/redis-state.js";
import { privateRedis, uniquePrefix, type PrivateRedis } from "../../helpers/private-redis.js";

let server: PrivateRedis;
let store: RedisStateStore;
beforeAll(async () => {
  server = await privateRedis();
  store = await RedisStateStore.connect({ url: server.url, prefix: uniquePrefix("pj") });
});
afterAll(async () => {
  await store?.close();
  server?.stop();
});

describe("putJob", () => {
  it("records inputs, refs and metadata in one command, and again after Redis lost its scripts", async () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 3);
    for (let i = 0; i < big.length; i += 997) big[i] = i % 253;
    const inputs = [Buffer.from("x"), Buffer.alloc(0), big, big.subarray(10, 40_000)];
    const refs = [null, { sha256: "a".repeat(64), sizeBytes: 5 }, null, null];
    for (const flush of [false, true, false]) {
      if (flush) expect(server.cli("script", "flush").trim()).toBe("OK");
      const job = `job-${randomUUID()}`;
      await store.putJob(job, inputs, JSON.stringify({ id: job }), refs);
      const got = (await store.getJobInputs(job))!;
      expect(got.map((b) => b.length)).toEqual(inputs.map((b) => b.length));
      expect(got.every((b, i) => b.equals(inputs[i]!))).toBe(true);
      expect(await store.getJobInputRefs(job)).toEqual(refs);
      expect(await store.getJobMeta(job)).toBe(JSON.stringify({ id: job }));
      expect(await store.unfinishedJobs()).toContain(job);
    }
    // Without refs, none are recorded.
    const plain = `job-${randomUUID()}`;
    await store.putJob(plain, [Buffer.from("y")], "{}");
    expect(await store.getJobInputRefs(plain)).toBeUndefined();
  });

  it("fails, recording nothing, where Redis refuses the write", async () => {
    const job = `job-${randomUUID()}`;
    server.cli("config", "set", "maxmemory", "1");
    try {
      await expect(store.putJob(job, [Buffer.alloc(1024)], "{}")).rejects.toThrow(/OOM|maxmemory/);
    } finally {
      server.cli("config", "set", "maxmemory", "0");
    }
    expect(await store.getJobMeta(job)).toBeUndefined();
    expect(await store.unfinishedJobs()).not.toContain(job);
  });
});
