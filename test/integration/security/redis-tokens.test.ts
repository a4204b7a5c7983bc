// With --state redis the scheduler keeps its tokens in Redis beside the state: a token issued by
// one scheduler is honoured by the next one that takes over (another data dir, same Redis), and a
// revocation there holds for all. Jobs keep their tenant across the takeover.
import { mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DistributeXClient, DistributeXError } from "../../../client/index.js";
import { loadConfig, schedulerConfigSchema } from "../../../common/config.js";
import { createLogger } from "../../../common/logger.js";
import { builtKernelsDir } from "../../../common/paths.js";
import { openBackends } from "../../../scheduler/backends/factory.js";
import { Scheduler } from "../../../scheduler/scheduler.js";
import { testServices, uniquePrefix } from "../../helpers/services.js";

const started: Scheduler[] = [];
afterAll(async () => {
  for (const s of started) await s.stop(0).catch(() => undefined);
});

async function startScheduler(prefix: string): Promise<{ scheduler: Scheduler; address: string; adminToken: string; ca: string }> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "distx-redis-tokens-"));
  const config = loadConfig(schedulerConfigSchema, {
    section: "scheduler",
    env: {},
    flags: { port: 0, state: "redis", redisUrl: testServices().redis, redisPrefix: prefix, dataDir, logLevel: "silent", drainGraceMs: 0, leaseTtlMs: 1000 },
  });
  const log = createLogger("scheduler", "silent");
  const scheduler = new Scheduler(config, log, await openBackends(config, log));
  started.push(scheduler);
  const address = await scheduler.start();
  // Each data dir has its own CA (TLS is on): clients verify each scheduler against its own.
  return { scheduler, address, adminToken: readFileSync(path.join(dataDir, "admin.token"), "utf8").trim(), ca: path.join(dataDir, "pki", "ca.crt") };
}

describe("tokens in Redis", () => {
  it("are shared by the schedulers of one Redis prefix, revocations included", async () => {
    const prefix = uniquePrefix("tok");
    const a = await startScheduler(prefix);
    const adminA = new DistributeXClient(a.address, { ca: a.ca, token: a.adminToken });
    const submit = await adminA.createToken({ role: "submit", tenant: "t1" });
    const read = await adminA.createToken({ role: "read", tenant: "t1" });
    const t1 = new DistributeXClient(a.address, { ca: a.ca, token: submit.token });
    const { kernelId } = await t1.registerKernel(readFileSync(path.join(builtKernelsDir(), "saxpy.wasm")));
    const { jobId } = await t1.submitJob({ kernelId, inputs: [Buffer.alloc(12)] }); // no agents: stays unfinished
    t1.close();
    adminA.close();
    await a.scheduler.stop(0);

    // The next scheduler: its own data dir, the same Redis.
    const b = await startScheduler(prefix);
    const t1b = new DistributeXClient(b.address, { ca: b.ca, token: submit.token });
    expect((await t1b.getJob(jobId)).tenant).toBe("t1");
    expect((await t1b.getKernel(kernelId)).kernelId).toBe(kernelId);
    const adminB = new DistributeXClient(b.address, { ca: b.ca, token: b.adminToken });
    // A's bootstrap admin token is in the same store.
    expect((await adminB.listTokens()).map((k) => k.id)).toEqual(expect.arrayContaining([submit.info.id, read.info.id, a.adminToken.split("_")[1]]));
    await adminB.revokeToken(read.info.id);
    const readB = new DistributeXClient(b.address, { ca: b.ca, token: read.token });
    const err = await readB.getJob(jobId).catch((e: DistributeXError) => e);
    expect(err).toBeInstanceOf(DistributeXError);
    expect((err as DistributeXError).codeName).toBe("UNAUTHENTICATED");
    // Another tenant still cannot see t1's job after the takeover.
    const other = new DistributeXClient(b.address, { ca: b.ca, token: (await adminB.createToken({ role: "submit", tenant: "t2" })).token });
    expect(((await other.getJob(jobId).catch((e: DistributeXError) => e)) as DistributeXError).codeName).toBe("NOT_FOUND");
    for (const c of [t1b, adminB, readB, other]) c.close();
  });
});
