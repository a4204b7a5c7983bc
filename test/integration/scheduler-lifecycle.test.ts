// One lifecycle state per scheduler: the transition table, and real schedulers (real Redis lease,
// real admin HTTP) whose state and /readyz follow it: standby while another holds the lease,
// active once listening, stopped after a stop that a second call does not run again.
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { schedulerConfigSchema } from "../../common/config.js";
import { createLogger } from "../../common/logger.js";
import { RedisLease } from "../../scheduler/backends/redis-lease.js";
import { SchedulerLifecycle } from "../../scheduler/lifecycle.js";
import { Scheduler } from "../../scheduler/scheduler.js";
import { testServices, uniquePrefix, until } from "../helpers/services.js";

const log = createLogger("test", "silent");

describe("SchedulerLifecycle", () => {
  it("follows the table, takes jobs until the drain and ignores transitions it does not allow", () => {
    const life = new SchedulerLifecycle(log);
    expect(life.state).toBe("starting");
    expect(life.notReady()).toBe("starting");
    expect(life.to("active")).toBe(false); // nothing restored yet
    expect(life.to("waiting-for-backends")).toBe(true);
    expect(life.notReady()).toMatch(/waiting for backends/);
    expect(life.to("standby")).toBe(true);
    expect(life.notReady()).toMatch(/standby: another scheduler holds the lease/);
    expect(life.to("restoring")).toBe(true);
    expect(life.to("standby")).toBe(false); // the lease is ours
    expect(life.to("active")).toBe(true);
    expect(life.notReady()).toBeUndefined();
    expect(life.acceptsJobs).toBe(true);
    expect(life.to("draining")).toBe(true);
    expect(life.acceptsJobs).toBe(false);
    expect(life.notReady()).toMatch(/draining/);
    expect(life.to("active")).toBe(false);
    expect(life.to("stopped")).toBe(false); // stopping comes first
    expect(life.to("stopping")).toBe(true);
    expect(life.to("stopped")).toBe(true);
    expect(life.to("draining")).toBe(false);
    expect(life.notReady()).toBe("stopped");
  });

  it("a step-down goes from active straight to stopping, without a drain", () => {
    const life = new SchedulerLifecycle(log);
    for (const s of ["restoring", "active", "stopping", "stopped"] as const) expect(life.to(s)).toBe(true);
  });
});

describe("a scheduler's lifecycle over a real lease and /readyz", () => {
  const redis = new Redis(testServices().redis);
  const connections: Redis[] = [];
  const schedulers: Scheduler[] = [];
  afterAll(async () => {
    for (const s of schedulers) await s.stop(0);
    for (const c of connections) c.disconnect();
    await redis.quit();
  });

  function scheduler(key: string): Scheduler {
    const leaseRedis = new Redis(testServices().redis);
    connections.push(leaseRedis);
    const s = new Scheduler(schedulerConfigSchema.parse({ port: 0, adminPort: 0, drainGraceMs: 0 }), log, { lease: new RedisLease(leaseRedis, key, 2_000) });
    schedulers.push(s);
    return s;
  }

  it("stands by while another holds the lease, is active and ready once it holds it, stopped after one memoised stop", async () => {
    const key = `${uniquePrefix("lifecycle")}:lease`;
    const leader = scheduler(key);
    expect(leader.lifecycle.state).toBe("starting");
    await leader.start();
    expect(leader.lifecycle.state).toBe("active");
    const readyz = async (s: Scheduler) => {
      const res = await fetch(`http://${s.monitoring.adminAddress}/readyz`);
      return { status: res.status, body: await res.text() };
    };
    expect(await readyz(leader)).toEqual({ status: 200, body: "ready\n" });

    const standby = scheduler(key);
    const standbyStarted = standby.start();
    await until("the standby", async () => standby.lifecycle.state === "standby", 30_000, 50);

    const first = leader.stop(0);
    expect(leader.stop(0)).toBe(first);
    expect(leader.lifecycle.state).toBe("draining");
    expect(leader.lifecycle.acceptsJobs).toBe(false);
    await first;
    expect(leader.lifecycle.state).toBe("stopped");

    await standbyStarted;
    expect(standby.lifecycle.state).toBe("active");
    expect(await readyz(standby)).toEqual({ status: 200, body: "ready\n" });
  });
});
