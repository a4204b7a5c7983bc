// Redis secured: a real redis-server with TLS only, the default user off, and an ACL user
// limited to the key prefix and DistributeX's commands (secure-redis.ts). The state store, the
// result cache and the lease work through rediss://user:password@… with the CA pinned; the
// default user, a wrong password, plain TCP and a client that does not trust the CA are refused;
// the user cannot touch keys outside its prefix; no error message shows the password.
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectRedis } from "../../../scheduler/backends/redis-connection.js";
import { RedisStateStore } from "../../../scheduler/backends/redis-state.js";
import { RedisLease } from "../../../scheduler/backends/redis-lease.js";
import { startSecureRedis, type SecureRedis } from "../../helpers/secure-redis.js";
import { uniquePrefix } from "../../helpers/services.js";

let srv: SecureRedis;

beforeAll(async () => {
  srv = await startSecureRedis(uniquePrefix("rtls"));
}, 60_000);
afterAll(async () => {
  await srv?.stop();
});

/** The error connectRedis gives (or undefined when it connects). */
async function refusal(url: string, caFile?: string): Promise<string | undefined> {
  try {
    const r = await connectRedis(url, 3000, "distx-test", caFile);
    r.disconnect();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

describe("Redis over TLS with an ACL user", () => {
  it("the state store, result cache and lease work through rediss:// with the CA pinned", async () => {
    const store = await RedisStateStore.connect({ url: srv.url, caFile: srv.caFile, prefix: srv.prefix, connectTimeoutMs: 5000 });
    try {
      const kernelId = "a".repeat(64);
      expect(await store.putKernel({ kernelId, name: "k", kind: "KERNEL_KIND_WASM", entry: "", abi: "1", sizeBytes: 3, registeredAtMs: 1, module: Buffer.from([1, 2, 3]) })).toEqual({ created: true });
      expect((await store.getKernel(kernelId))?.module).toEqual(Buffer.from([1, 2, 3]));
      await store.putJob("j1", [Buffer.from("in0"), Buffer.from("in1")], "{}");
      expect(await store.unfinishedJobs()).toEqual(["j1"]);
      expect(await store.getJobInputs("j1")).toEqual([Buffer.from("in0"), Buffer.from("in1")]);
      const res = (taskIndex: number) => ({ taskIndex, state: "TASK_STATE_SUCCEEDED" as const, output: Buffer.from(`out${taskIndex}`), nodeId: "n", attempt: 1, runMs: 1 });
      // Two results in one turn go as one script call (EVALSHA/EVAL of HSETNX); a repeat loses.
      expect(await Promise.all([store.recordResult("j1", res(0)), store.recordResult("j1", res(1))])).toEqual([true, true]);
      expect(await store.recordResult("j1", res(0))).toBe(false);
      expect((await store.getResults("j1", 0, 10)).map((r) => r.output.toString())).toEqual(["out0", "out1"]);
      await store.putCachedResult("c1", Buffer.from("cached"));
      expect(await store.getCachedResults(["c1", "c2"])).toEqual([Buffer.from("cached"), undefined]);
      await store.putNode("n1", "{}", 10_000);
      expect(await store.listNodes()).toEqual(["{}"]);
      await store.markJobFinished("j1");
      expect(await store.unfinishedJobs()).toEqual([]);
      await store.deleteJob("j1");

      const lease = new RedisLease(store.redis.duplicate(), `${srv.prefix}:leader`, 1000);
      await lease.acquire();
      expect(lease.isHeld).toBe(true);
      await lease.release();
    } finally {
      await store.close();
    }
  }, 30_000);

  it("refuses the default user, a wrong password, plain TCP and an untrusted certificate, without showing the password", async () => {
    const base = `127.0.0.1:${srv.port}`;
    const noUser = await refusal(`rediss://${base}`, srv.caFile);
    expect(noUser).toMatch(/NOAUTH|WRONGPASS|NOPERM|disabled/i);
    const wrong = await refusal(`rediss://${srv.user}:not-${srv.password}@${base}`, srv.caFile);
    expect(wrong).toMatch(/WRONGPASS/);
    expect(wrong).not.toContain(srv.password);
    // The right password over plain TCP: the TLS port does not speak it.
    const plain = await refusal(`redis://${srv.user}:${srv.password}@${base}`);
    expect(plain).toBeDefined();
    expect(plain).not.toContain(srv.password);
    // TLS without the CA: the server's certificate is not trusted.
    const untrusted = await refusal(srv.url);
    expect(untrusted).toMatch(/self[- ]signed|unable to (verify|get)/i);
    expect(untrusted).not.toContain(srv.password);
    expect(await refusal(srv.url, srv.caFile)).toBeUndefined();
  }, 30_000);

  it("keeps the ACL user inside its key prefix and its commands", async () => {
    const r = await connectRedis(srv.url, 3000, "distx-test", srv.caFile);
    try {
      await r.set(`${srv.prefix}:ok`, "1");
      await expect(r.set("elsewhere:key", "1")).rejects.toThrow(/NOPERM/);
      await expect(r.get("elsewhere:key")).rejects.toThrow(/NOPERM/);
      await expect(r.flushall()).rejects.toThrow(/NOPERM/);
      await expect(r.config("GET", "dir")).rejects.toThrow(/NOPERM/);
      await expect(r.keys("*")).rejects.toThrow(/NOPERM/);
      // A script cannot reach outside the prefix either.
      await expect(r.eval("return redis.call('SET', KEYS[1], '1')", 1, "elsewhere:key")).rejects.toThrow(/NOPERM|permission/i);
    } finally {
      r.disconnect();
    }
  }, 30_000);
});

it("a plain ioredis client without TLS gets no answer from the TLS-only server", async () => {
  const r = new Redis({ host: "127.0.0.1", port: srv.port, lazyConnect: true, connectTimeout: 1500, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on("error", () => undefined);
  await expect(r.connect().then(() => r.ping())).rejects.toThrow();
  r.disconnect();
}, 30_000);
