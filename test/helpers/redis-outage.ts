// The rig the output-upload fault tests share: one agent (two workers) and a scheduler keeping its
// state in a private redis-server (helpers/private-redis.ts) that a test may make refuse writes
// (maxmemory with noeviction: Redis answers OOM to writes and still serves reads) or pause.
import { expect } from "vitest";
import { blobRig, type BlobRig } from "./blob-rig.js";
import { privateRedis, type PrivateRedis } from "./private-redis.js";
import { until } from "./services.js";

export interface OutageRig extends BlobRig {
  r: PrivateRedis;
  /** Redis's used_memory now. */
  usedMemory(): number;
  /** How many writes Redis has refused (OOM) so far. */
  oomErrors(): number;
  /** Writes refused once Redis holds `headroomBytes` more than now; resolves with when the first was refused. */
  refuseWritesAfter(headroomBytes: number): Promise<number>;
  acceptWrites(): void;
  /** Every output a job keeps holds exactly its declared size (no half-written output). */
  expectOutputsWhole(jobId: string): Promise<void>;
}

export async function outageRig(name: string, o: { kafka?: boolean } = {}): Promise<OutageRig> {
  const r = await privateRedis();
  r.cli("config", "set", "maxmemory-policy", "noeviction");
  const rig = await blobRig({
    name,
    kafka: o.kafka ?? true,
    redisUrl: r.url,
    agents: 1,
    workersPerAgent: 2,
    agentArgs: () => ["--no-calibrate", "--connect-timeout-ms", "0"],
    // Longer than the faults: a lease that cannot be renewed is another fault, not these.
    schedulerArgs: ["--lease-ttl-ms", "20000"],
  }).catch((e: unknown) => {
    r.stop();
    throw e;
  });
  const usedMemory = () => Number(/^used_memory:(\d+)/m.exec(r.cli("info", "memory"))?.[1] ?? 0);
  const oomErrors = () => Number(/^errorstat_OOM:count=(\d+)/m.exec(r.cli("info", "errorstats"))?.[1] ?? 0);
  return {
    ...rig,
    r,
    usedMemory,
    oomErrors,
    async refuseWritesAfter(headroomBytes) {
      r.cli("config", "set", "maxmemory", String(usedMemory() + headroomBytes));
      await until("Redis to refuse a write", async () => oomErrors() > 0, 30_000, 10);
      return Date.now();
    },
    acceptWrites: () => void r.cli("config", "set", "maxmemory", "0"),
    async expectOutputsWhole(jobId) {
      const kept = await rig.redis.hgetall(`${rig.prefix}:job:${jobId}:outs`);
      for (const [name, json] of Object.entries(kept)) {
        expect(await rig.redis.strlen(`${rig.prefix}:job:${jobId}:out:${name}`), name).toBe(Number((JSON.parse(json) as { sizeBytes: number }).sizeBytes));
      }
    },
    async stop() {
      await rig.stop();
      r.stop();
    },
  };
}
