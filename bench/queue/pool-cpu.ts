// CPU per task of the agent's worker pool alone: 8,192 histogram tasks of 32 KiB (inputs as slices
// of 1 MiB buffers, as the session decodes them: BENCH_POOL_GAP bytes apart, default 61, about an
// assignment's other fields, so they sit at every alignment as decoded ones do; 0 = packed
// end to end), 2 workers, CPU of the whole process (worker threads included).
// Run: nice -n 19 node dist/bench/queue/pool-cpu.js   (compare builds alternating)
import { randomFillSync } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { WorkerPool } from "../../agent/pool/worker-pool.js";
import { compileWasmKernel } from "../../common/kernel-abi.js";
import { repoRoot } from "../../common/paths.js";

const SIZE = 32 * 1024;
const TASKS = 8192;
const GAP = Number(process.env.BENCH_POOL_GAP ?? 61);

function inputs(n: number): Buffer[] {
  const out: Buffer[] = [];
  for (let j = 0; j < n; j += 32) {
    const k = Math.min(32, n - j);
    const msg = randomFillSync(Buffer.allocUnsafe(k * (SIZE + GAP)));
    for (let i = 0; i < k; i++) {
      const at = i * (SIZE + GAP) + GAP;
      const b = msg.subarray(at, at + SIZE);
      b.writeUInt32LE((SIZE - 8) / 4, 0);
      b.writeUInt32LE(24, 4);
      out.push(b);
    }
  }
  return out;
}

async function main(): Promise<void> {
  const module = await compileWasmKernel(readFileSync(path.join(repoRoot(), "build/kernels/histogram.wasm")));
  const pool = new WorkerPool({ size: 2 });
  // Batches of 32 with at most 128 in flight, as assignments reach the agent.
  const round = async (all: Buffer[]) => {
    const inflight: Promise<unknown>[] = [];
    for (let i = 0; i < all.length; i += 32) {
      for (const input of all.slice(i, i + 32)) inflight.push(pool.run({ kernelId: "histogram", module, input, timeoutMs: 10_000, memoryLimitBytes: 16 * 1024 * 1024 }).promise);
      if (inflight.length >= 128) await Promise.all(inflight.splice(0, 64));
    }
    await Promise.all(inflight);
  };
  await round(inputs(512));
  const all = inputs(TASKS);
  const cpu0 = process.cpuUsage();
  await round(all);
  const cpu = process.cpuUsage(cpu0);
  console.log(`pool cpu µs per task ${((cpu.user + cpu.system) / TASKS).toFixed(1)} (user ${(cpu.user / TASKS).toFixed(1)}, system ${(cpu.system / TASKS).toFixed(1)})`);
  await pool.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
