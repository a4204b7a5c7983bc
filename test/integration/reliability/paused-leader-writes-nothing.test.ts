// Found by the chaos harness (36-minute run, seed 1): the active scheduler was paused (SIGSTOP)
// with a client's CancelJob in its socket; a standby took the lease and finished the job; on
// SIGCONT the old one handled the cancel before its renewal told it the lease was gone, and its
// CANCELLED record won the first-wins race against the new leader's SUCCEEDED one. Writes are now
// fenced: none goes out unless Redis confirmed the lease within its ttl. And a scheduler whose
// record loses that race takes the stored one, so a job's state never contradicts its results.
import { afterAll, describe, expect, it } from "vitest";
import { fenceWrites } from "../../../scheduler/backends/fenced-store.js";
import { RedisLease } from "../../../scheduler/backends/redis-lease.js";
import { connectRedis } from "../../../scheduler/backends/redis-connection.js";
import { RedisStateStore } from "../../../scheduler/backends/redis-state.js";
import type { StoredResult } from "../../../scheduler/backends/types.js";
import { testServices, uniquePrefix, until } from "../../helpers/private-redis.js";

const closers: (() => unknown)[] = [];
afterAll(async () => {
  for (const close of closers.reverse()) await close();
});

const result = (state: StoredResult["state"]): StoredResult => ({ taskIndex: 0, state, output: Buffer.from(state), nodeId: "node-a", attempt: 1, runMs: 1 });

/** Blocks this process's event loop, as SIGSTOP blocks a scheduler's: no timer and no reply runs meanwhile. */
function pauseFor(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // spin
  }
}

describe("a scheduler paused past its lease ttl", () => {
  it("writes nothing until Redis confirms its lease again", async () => {
    const { redis } = testServices();
    const prefix = uniquePrefix("fence");
    const store = await RedisStateStore.connect({ url: redis, prefix });
    closers.push(() => store.close());
    const leaseRedis = await connectRedis(redis);
    closers.push(() => leaseRedis.disconnect());
    const lease = new RedisLease(leaseRedis, `${prefix}:leader`, 400);
    closers.push(() => lease.release());
    await lease.acquire();
    const fenced = fenceWrites(store, lease);
    expect(await fenced.recordResult("job-a", result("TASK_STATE_SUCCEEDED"))).toBe(true);

    pauseFor(600); // longer than the ttl: another scheduler may hold the lease by now
    await expect(fenced.recordResult("job-b", result("TASK_STATE_CANCELLED"))).rejects.toMatchObject({ code: 14 }); // UNAVAILABLE: retry is safe
    expect(await store.getResults("job-b", 0, 1)).toEqual([]);

    // Nobody took it meanwhile: the next renewal confirms it and writes go out again.
    await until("the lease confirmed again", async () => lease.trusted, 5000, 20);
    expect(await fenced.recordResult("job-b", result("TASK_STATE_SUCCEEDED"))).toBe(true);
    // Reads are never fenced.
    expect((await fenced.getResults("job-b", 0, 1))[0]?.state).toBe("TASK_STATE_SUCCEEDED");
  }, 30_000);
});
