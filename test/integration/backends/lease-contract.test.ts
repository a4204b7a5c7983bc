// The scheduler lease is an interface (scheduler/backends/lease.ts) with two implementations,
// Redis and in-process memory; one contract runs against both. Then two real schedulers in one
// process elect their active one through a MemoryLease, as they would through Redis.
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { schedulerConfigSchema } from "../../../common/config.js";
import { createLogger } from "../../../common/logger.js";
import { MemoryLease, MemoryLeaseTable, type Lease } from "../../../scheduler/backends/lease.js";
import { RedisLease } from "../../../scheduler/backends/redis-lease.js";
import { Scheduler } from "../../../scheduler/scheduler.js";
import { testServices, uniquePrefix, until } from "../../helpers/services.js";

const connections: Redis[] = [];
afterAll(() => {
  for (const c of connections) c.disconnect();
});

/** Two rivals for one lease. */
const implementations: [string, () => [Lease, Lease]][] = [
  [
    "memory",
    () => {
      const table = new MemoryLeaseTable();
      return [new MemoryLease("leader", table), new MemoryLease("leader", table)];
    },
  ],
  [
    "redis",
    () => {
      const key = `${uniquePrefix("lease")}:leader`;
      const [a, b] = [new Redis(testServices().redis), new Redis(testServices().redis)];
      connections.push(a, b);
      return [new RedisLease(a, key, 600), new RedisLease(b, key, 600)];
    },
  ],
];

describe.each(implementations)("Lease contract: %s", (_name, rivals) => {
  it("one holder at a time, trusted while held; a waiter is told who holds it and takes over on release", async () => {
    const [a, b] = rivals();
    try {
      expect(a.isHeld).toBe(false);
      expect(a.trusted).toBe(false);
      await a.acquire();
      expect(a.isHeld).toBe(true);
      expect(a.trusted).toBe(true);
      expect(await b.tryAcquire()).toBe(false);
      let toldHolder: string | null | undefined;
      const taken = b.acquire((holder) => (toldHolder = holder));
      await until("the waiter was told", async () => toldHolder !== undefined, 5_000, 20);
      expect(toldHolder).toBe(a.owner);
      expect(b.isHeld).toBe(false);
      await a.release();
      expect(a.isHeld).toBe(false);
      expect(a.trusted).toBe(false);
      await taken;
      expect(b.isHeld).toBe(true);
      expect(b.trusted).toBe(true);
    } finally {
      await a.release();
      await b.release();
    }
  });

  it("a wait ends when its signal aborts, and a released lease is not taken again", async () => {
    const [a, b] = rivals();
    try {
      await a.acquire();
      const abort = new AbortController();
      const waiting = b.acquire(undefined, abort.signal);
      abort.abort();
      await expect(waiting).rejects.toThrow(/aborted/);
      await a.release();
      await expect(a.acquire()).rejects.toThrow(/aborted/);
    } finally {
      await a.release();
      await b.release();
    }
  });
});

describe("two schedulers in one process on a MemoryLease", () => {
  const log = createLogger("test", "silent");
  const schedulers: Scheduler[] = [];
  afterAll(async () => {
    for (const s of schedulers) await s.stop(0);
  });

  it("the second stands by until the first stops, then becomes active", async () => {
    const table = new MemoryLeaseTable();
    const key = `leader-${randomUUID()}`;
    const make = () => {
      const s = new Scheduler(schedulerConfigSchema.parse({ port: 0, adminPort: 0, drainGraceMs: 0, insecure: true }), log, { lease: new MemoryLease(key, table) });
      schedulers.push(s);
      return s;
    };
    const first = make();
    await first.start();
    expect(first.lifecycle.state).toBe("active");
    const second = make();
    const started = second.start();
    await until("the second stands by", async () => second.lifecycle.state === "standby", 10_000, 20);
    await first.stop(0);
    await started;
    expect(second.lifecycle.state).toBe("active");
  });
});
