// From defect 10 of the reliability issue: Scheduler.stop was not idempotent, and one failing step
// skipped the rest, the lease release among them (a standby then waited for the lease's TTL).
// stop() is memoised and runs every step whatever an earlier one did.
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { schedulerConfigSchema } from "../../../common/config.js";
import { createLogger } from "../../../common/logger.js";
import { RedisLease } from "../../../scheduler/backends/redis-lease.js";
import { Scheduler } from "../../../scheduler/scheduler.js";
import { testServices, uniquePrefix } from "../../helpers/services.js";

let redis: Redis;
beforeAll(() => {
  redis = new Redis(testServices().redis);
});
afterAll(async () => {
  await redis.quit();
});

async function startWithLease(): Promise<{ scheduler: Scheduler; key: string; leaseRedis: Redis }> {
  const key = `${uniquePrefix("stop")}:lease`;
  const leaseRedis = new Redis(testServices().redis);
  const scheduler = new Scheduler(schedulerConfigSchema.parse({ port: 0, adminPort: 0, drainGraceMs: 0 }), createLogger("scheduler", "silent"), {
    lease: new RedisLease(leaseRedis, key, 30_000),
  });
  await scheduler.start();
  expect(await redis.exists(key)).toBe(1);
  return { scheduler, key, leaseRedis };
}

it("stop() called twice at once and again later resolves each time and releases the lease once", async () => {
  const { scheduler, key, leaseRedis } = await startWithLease();
  try {
    await Promise.all([scheduler.stop(0), scheduler.stop(0)]);
    await scheduler.stop(0);
    expect(await redis.exists(key)).toBe(0);
  } finally {
    leaseRedis.disconnect();
  }
});

it("a step that fails does not skip the rest: the lease is released all the same", async () => {
  const { scheduler, key, leaseRedis } = await startWithLease();
  try {
    // The admin server is already closed, so stop's monitoring step fails.
    await scheduler.monitoring.stop();
    await scheduler.stop(0);
    expect(await redis.exists(key)).toBe(0);
  } finally {
    leaseRedis.disconnect();
  }
});
