// The state store's per-task Redis writes alone, in CPU µs of this process per call: putJob with
// one 32 KiB input (the 32 KiB bench row's job) and recordResult with a 256-byte output, 32 at a
// time. Compare builds by pointing it at another checkout's build (its dist/ is loaded):
//   eval "$(scripts/test-services.sh)" && node dist/bench/queue/redis-writes.js [/path/to/other/checkout]
// Alternate the two a few times: CPU per call is steadier than wall time on a shared machine.
import { pathToFileURL } from "node:url";
import path from "node:path";
import type { RedisStateStore as Store } from "../../scheduler/backends/redis-state.js";
import { repoRoot } from "../../common/paths.js";

const tree = path.resolve(process.argv[2] ?? repoRoot());
const url = process.env.DISTX_TEST_REDIS ?? "redis://127.0.0.1:6379";
const N = Number(process.env.BENCH_REDIS_WRITES ?? 3000);
const WIDTH = 32;
const mod = (await import(pathToFileURL(path.join(tree, "dist/scheduler/backends/redis-state.js")).href)) as { RedisStateStore: typeof Store };
const prefix = `bench-rw-${process.pid}`;
const store = await mod.RedisStateStore.connect({ url, prefix });
const input = Buffer.alloc(32768, 7);
const output = Buffer.alloc(256, 1);

async function cpuPerCall(op: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const lanes = () => Promise.all(Array.from({ length: WIDTH }, async () => { while (next < N) await op(next++); }));
  const c0 = process.cpuUsage();
  await lanes();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / N;
}

try {
  await cpuPerCall((i) => store.putJob(`warm-${i}`, [input], "{}"));
  const putJob = await cpuPerCall((i) => store.putJob(`job-${i}`, [input], JSON.stringify({ id: `job-${i}` })));
  const recordResult = await cpuPerCall((i) => store.recordResult("job-r", { taskIndex: i, state: "TASK_STATE_SUCCEEDED", output, nodeId: "n", attempt: 1, runMs: 1 }));
  console.log(JSON.stringify({ tree, putJobCpuUs: Math.round(putJob * 10) / 10, recordResultCpuUs: Math.round(recordResult * 10) / 10 }));
} finally {
  // Only this run's keys.
  let cursor = "0";
  do {
    const [at, keys] = await store.redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    cursor = at;
    if (keys.length > 0) await store.redis.del(...keys);
  } while (cursor !== "0");
  await store.close();
}
