// Per-tenant quotas, kernels per tenant, kernel deletion and expiry, against real scheduler
// processes over real gRPC. The finding: ten 32 MiB kernel registrations added 419 MB
// to the scheduler with no limit, no delete and no expiry.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DistributeXClient, DistributeXError } from "../../../client/index.js";
import { builtKernelsDir } from "../../../common/paths.js";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";
import type { RedisStateStore } from "../../../scheduler/backends/redis-state.js";

const MiB = 1024 * 1024;
const saxpy = readFileSync(path.join(builtKernelsDir(), "saxpy.wasm"));

/** LEB128 of an unsigned integer. */
function leb(n: number): Buffer {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
}

/** A valid kernel of about `padBytes` more bytes (a custom section), different for each tag. */
function paddedKernel(tag: string, padBytes = 0): Buffer {
  const name = Buffer.from(`distx-pad-${tag}`);
  const body = Buffer.concat([leb(name.length), name, Buffer.alloc(padBytes, 7)]);
  return Buffer.concat([saxpy, Buffer.from([0]), leb(body.length), body]);
}

async function refusal(p: Promise<unknown>): Promise<DistributeXError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DistributeXError) return err;
    throw err;
  }
  throw new Error("expected a refusal");
}

function vmRssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m![1]) * 1024;
}

describe("the issue's finding: 32 MiB kernel registrations, default quotas", () => {
  let t: TestCluster;
  let client: DistributeXClient;
  beforeAll(async () => {
    t = await startTestCluster("quota-kernel-bytes", { agents: 0 });
    client = new DistributeXClient(t.address, { token: (await t.client.createToken({ role: "submit", tenant: "big" })).token });
  });
  afterAll(async () => {
    client?.close();
    await t?.stop();
  });

  it("accepts 32 MiB kernels up to the tenant's 128 MiB and refuses the rest with the quota named; the refused bytes are not stored", async () => {
    const pid = t.cluster.processes.find((p) => p.name === "scheduler")!.child.pid!;
    const before = vmRssBytes(pid);
    const outcomes: string[] = [];
    let firstRefusal: DistributeXError | undefined;
    const refusedIds: string[] = [];
    for (let i = 0; i < 10; i++) {
      const bytes = paddedKernel(`big-${i}`, 32 * MiB);
      try {
        await client.registerKernel(bytes);
        outcomes.push("ok");
      } catch (err) {
        if (!(err instanceof DistributeXError)) throw err;
        outcomes.push(err.codeName);
        firstRefusal ??= err;
        const { createHash } = await import("node:crypto");
        refusedIds.push(createHash("sha256").update(bytes).digest("hex"));
      }
    }
    const after = vmRssBytes(pid);
    console.log(`scheduler RSS: ${(before / 1e6).toFixed(0)} MB before, ${(after / 1e6).toFixed(0)} MB after ten 32 MiB registrations (${outcomes.filter((o) => o === "ok").length} accepted)`);
    expect(outcomes).toEqual([...Array(3).fill("ok"), ...Array(7).fill("RESOURCE_EXHAUSTED")]);
    expect(firstRefusal!.details).toMatch(/tenant big: quota kernelBytes exceeded: limit 134217728, in use \d+, this request needs \d+ more/);
    expect(firstRefusal!.details).toMatch(/Retrying will not help until the use drops/);
    // Refused kernels were never stored: not even the admin, who sees every tenant's, finds them.
    for (const id of refusedIds.slice(0, 2)) expect((await refusal(t.client.getKernel(id))).codeName).toBe("NOT_FOUND");
  }, 300_000); // 320 MiB through loopback: minutes on a loaded 2-core machine

  it("keeps kernels per tenant: the same bytes in two tenants are two registrations sharing one copy", async () => {
    const t2 = new DistributeXClient(t.address, { token: (await t.client.createToken({ role: "submit", tenant: "other" })).token });
    try {
      const bytes = paddedKernel("shared");
      const a = await client.registerKernel(bytes, { name: "mine" });
      expect(a.alreadyRegistered).toBe(false);
      expect((await refusal(t2.getKernel(a.kernelId))).codeName).toBe("NOT_FOUND");
      const b = await t2.registerKernel(bytes, { name: "theirs" });
      expect(b).toEqual({ kernelId: a.kernelId, alreadyRegistered: false }); // another tenant having it is not revealed
      expect((await t2.registerKernel(bytes)).alreadyRegistered).toBe(true);
      expect((await t2.getKernel(a.kernelId)).name).toBe("theirs");
      expect((await client.getKernel(a.kernelId)).name).toBe("mine");
      expect(await client.deleteKernel(a.kernelId)).toEqual({ contentDeleted: false });
      expect((await refusal(client.getKernel(a.kernelId))).codeName).toBe("NOT_FOUND");
      expect((await t2.getKernel(a.kernelId)).name).toBe("theirs");
      expect(await t2.deleteKernel(a.kernelId)).toEqual({ contentDeleted: true });
      expect((await refusal(t.client.getKernel(a.kernelId))).codeName).toBe("NOT_FOUND");
      expect((await refusal(t2.deleteKernel(a.kernelId))).codeName).toBe("NOT_FOUND");
    } finally {
      t2.close();
    }
  });
});

describe("small per-tenant quotas from the config file", () => {
  let t: TestCluster;
  let small: DistributeXClient;
  let roomy: DistributeXClient;
  beforeAll(async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "distx-quota-"));
    const file = path.join(dir, "config.json");
    writeFileSync(file, JSON.stringify({ scheduler: { tenantQuotas: { small: { kernels: 2, queuedTasks: 10, jobBytes: 1000 } } } }));
    t = await startTestCluster("quota-small", { agents: 0, schedulerArgs: ["--config", file] });
    small = new DistributeXClient(t.address, { token: (await t.client.createToken({ role: "submit", tenant: "small" })).token });
    roomy = new DistributeXClient(t.address, { token: (await t.client.createToken({ role: "submit", tenant: "roomy" })).token });
  });
  afterAll(async () => {
    small?.close();
    roomy?.close();
    await t?.stop();
  });

  it("limits kernels by count; deleting one makes room; a kernel in use by an unfinished job cannot be deleted", async () => {
    const k1 = (await small.registerKernel(paddedKernel("s1"))).kernelId;
    const k2 = (await small.registerKernel(paddedKernel("s2"))).kernelId;
    expect((await small.registerKernel(paddedKernel("s1"))).alreadyRegistered).toBe(true); // no new room needed
    const full = await refusal(small.registerKernel(paddedKernel("s3")));
    expect(full.codeName).toBe("RESOURCE_EXHAUSTED");
    expect(full.details).toMatch(/tenant small: quota kernels exceeded: limit 2, in use 2, this request needs 1 more\. Retrying will not help/);
    // Another tenant has its own (default) quota.
    await roomy.registerKernel(paddedKernel("s3"));

    const { jobId } = await small.submitJob({ kernelId: k1, inputs: [Buffer.alloc(12)] }); // no agents: stays pending
    const inUse = await refusal(small.deleteKernel(k1));
    expect(inUse.codeName).toBe("FAILED_PRECONDITION");
    expect(inUse.details).toContain(`used by unfinished job ${jobId}`);
    await small.cancelJob(jobId);
    await small.deleteKernel(k1);
    await small.registerKernel(paddedKernel("s3"));
    await small.deleteKernel(k2);
  });

  it("limits the tasks and the input bytes of a tenant's unfinished jobs", async () => {
    const kernelId = (await small.registerKernel(paddedKernel("jobs"))).kernelId;
    await roomy.registerKernel(paddedKernel("jobs"));
    const a = await small.submitJob({ kernelId, inputs: Array.from({ length: 8 }, () => Buffer.alloc(12)) });
    const tasks = await refusal(small.submitJob({ kernelId, inputs: Array.from({ length: 3 }, () => Buffer.alloc(12)) }));
    expect(tasks.codeName).toBe("RESOURCE_EXHAUSTED");
    expect(tasks.details).toMatch(/tenant small: quota queuedTasks exceeded: limit 10, in use 8, this request needs 3 more\. Retrying will not help until the use drops \(wait for its jobs to finish or cancel some\)/);
    const bytes = await refusal(small.submitJob({ kernelId, inputs: [Buffer.alloc(950)] }));
    expect(bytes.details).toMatch(/quota jobBytes exceeded: limit 1000, in use 96, this request needs 950 more/);
    // Other tenants are not held back by this one.
    await roomy.submitJob({ kernelId, inputs: Array.from({ length: 20 }, () => Buffer.alloc(100)) });
    // Finished (here: cancelled) jobs no longer count.
    await small.cancelJob(a.jobId);
    await small.submitJob({ kernelId, inputs: Array.from({ length: 10 }, () => Buffer.alloc(12)) });
  });
});

describe("unused kernels expire", () => {
  let t: TestCluster;
  beforeAll(async () => {
    t = await startTestCluster("quota-expiry", { agents: 0, schedulerArgs: ["--kernel-ttl-s", "1"] });
  });
  afterAll(async () => t?.stop());

  it("removes a kernel no job used within kernelTtlS, and keeps one an unfinished job uses", async () => {
    const unused = (await t.client.registerKernel(paddedKernel("unused"))).kernelId;
    const used = (await t.client.registerKernel(paddedKernel("used"))).kernelId;
    await t.client.submitJob({ kernelId: used, inputs: [Buffer.alloc(12)] }); // pending: no agents
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const gone = await t.client.getKernel(unused).then(
        () => false,
        (err: DistributeXError) => err.codeName === "NOT_FOUND",
      );
      if (gone) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect((await refusal(t.client.getKernel(unused))).codeName).toBe("NOT_FOUND");
    expect((await t.client.getKernel(used)).kernelId).toBe(used);
    const resubmit = await refusal(t.client.submitJob({ kernelId: unused, inputs: [Buffer.alloc(12)] }));
    expect(resubmit.details).toMatch(/unknown kernel .*register it with RegisterKernel first/);
  });
});

describe("the same finding with --state redis", () => {
  it("stores only what the quota admits in Redis: three 32 MiB kernels of ten", async () => {
    const { loadConfig, schedulerConfigSchema } = await import("../../../common/config.js");
    const { createLogger } = await import("../../../common/logger.js");
    const { openBackends } = await import("../../../scheduler/backends/factory.js");
    const { Scheduler } = await import("../../../scheduler/scheduler.js");
    const { testServices, uniquePrefix } = await import("../../helpers/services.js");
    const prefix = uniquePrefix("quota");
    const dataDir = mkdtempSync(path.join(os.tmpdir(), "distx-quota-redis-"));
    const config = loadConfig(schedulerConfigSchema, {
      section: "scheduler",
      env: {},
      flags: { port: 0, state: "redis", redisUrl: testServices().redis, redisPrefix: prefix, dataDir, logLevel: "silent", drainGraceMs: 0 },
    });
    const log = createLogger("scheduler", "silent");
    const scheduler = new Scheduler(config, log, await openBackends(config, log));
    const address = await scheduler.start();
    const ca = path.join(dataDir, "pki", "ca.crt");
    const admin = new DistributeXClient(address, { ca, tokenFile: path.join(dataDir, "admin.token") });
    const client = new DistributeXClient(address, { ca, token: (await admin.createToken({ role: "submit", tenant: "big" })).token });
    try {
      let accepted = 0;
      for (let i = 0; i < 10; i++) {
        await client.registerKernel(paddedKernel(`redis-${i}`, 32 * MiB)).then(
          () => accepted++,
          (err: DistributeXError) => expect(err.codeName).toBe("RESOURCE_EXHAUSTED"),
        );
      }
      expect(accepted).toBe(3);
      const redis = (scheduler.core.store as RedisStateStore).redis;
      const keys = await redis.keys(`${prefix}:kernel:*`);
      let bytes = 0;
      for (const k of keys) bytes += Number(await redis.memory("USAGE", k));
      console.log(`redis: ${keys.filter((k) => !k.endsWith(":tenants")).length} kernel keys, ${(bytes / 1e6).toFixed(0)} MB for ten 32 MiB registrations`);
      expect(keys.filter((k) => !k.endsWith(":tenants"))).toHaveLength(3);
      // MEMORY USAGE counts the allocator's size class: a 32 MiB value takes about 40 MiB.
      expect(bytes).toBeLessThan(3 * 48 * MiB);
      // Deleting gives the room back, in Redis too.
      const [one] = await redis.keys(`${prefix}:kernel:*:tenants`);
      const kernelId = one!.split(":").at(-2)!;
      expect(await client.deleteKernel(kernelId)).toEqual({ contentDeleted: true });
      expect(await redis.exists(`${prefix}:kernel:${kernelId}`)).toBe(0);
      await client.registerKernel(paddedKernel("redis-after-delete", 32 * MiB));
    } finally {
      client.close();
      admin.close();
      await scheduler.stop(0);
    }
  }, 300_000);
});
