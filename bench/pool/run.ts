// Worker pool micro-bench: tasks/s of no-op WebAssembly tasks (saxpy with n = 0) through a
// 2-worker pool, with pipelining (the default) against the same pool forced to one task per
// worker at a time (maxPipelineDepth: 1), in the same run, rounds interleaved.
// Run: npm run bench:pool    (env: BENCH_TASKS, default 20000; BENCH_ROUNDS, default 3)
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { WorkerPool, type PoolStats } from "../../agent/pool/worker-pool.js";
import { compileWasmKernel } from "../../common/kernel-abi.js";
import { builtKernelsDir, repoRoot } from "../../common/paths.js";
import { saxpyInput } from "../../kernels/reference/index.js";
import { buildKernel } from "../../kernels/toolchain/build.js";

const TASKS = Number(process.env.BENCH_TASKS ?? 20_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WORKERS = 2;

async function saxpyWasm(): Promise<Uint8Array> {
  const built = path.join(builtKernelsDir(), "saxpy.wasm");
  if (existsSync(built)) return readFile(built);
  // Not built yet (npm run build:kernels): build just this one into a temp folder.
  const outDir = await mkdtemp(path.join(os.tmpdir(), "distx-bench-pool-"));
  const { wasmPath } = await buildKernel(path.join(repoRoot(), "kernels/assembly/examples/saxpy.ts"), { outDir });
  return readFile(wasmPath);
}

async function main(): Promise<void> {
  const module = await compileWasmKernel(await saxpyWasm());
  const input = saxpyInput(1.5, new Float32Array(0), new Float32Array(0));
  const task = { kernelId: "saxpy", module, input, timeoutMs: 60_000, memoryLimitBytes: 1 << 20 };

  const configs = [
    { name: "depth 1 (no pipelining, baseline)", maxPipelineDepth: 1 },
    { name: "pipelined (default, up to 64)", maxPipelineDepth: undefined },
  ];
  const pools = configs.map((c) => new WorkerPool({ size: WORKERS, ...(c.maxPipelineDepth ? { maxPipelineDepth: c.maxPipelineDepth } : {}) }));
  const runBatch = async (pool: WorkerPool, n: number): Promise<number> => {
    const t0 = performance.now();
    const results = await Promise.all(Array.from({ length: n }, () => pool.run(task).promise));
    const seconds = (performance.now() - t0) / 1000;
    for (const r of results) if (r.output.byteLength !== 0) throw new Error(`saxpy n=0 returned ${r.output.byteLength} bytes`);
    return n / seconds;
  };

  // Warm up: worker start, module transfer, V8 tiering, and the pool's run-time estimate.
  for (const pool of pools) await runBatch(pool, 2000);

  const rates: number[][] = configs.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, pool] of pools.entries()) rates[i]!.push(await runBatch(pool, TASKS));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const stats: PoolStats[] = pools.map((p) => p.getStats());
  const lines = [
    `# Worker pool bench (${new Date().toISOString()})`,
    "",
    `${TASKS} no-op saxpy tasks (n = 0) per round, ${WORKERS} workers, ${ROUNDS} rounds interleaved; ${os.cpus()[0]?.model ?? "?"} × ${os.cpus().length}, Node ${process.version}.`,
    "",
    "| pool | tasks/s (median) | rounds | × baseline | pipelined sends | max in flight | tasks per message to / from workers |",
    "| --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ...configs.map((c, i) => {
      const s = stats[i]!;
      return `| ${c.name} | ${Math.round(median(rates[i]!))} | ${rates[i]!.map((r) => Math.round(r)).join(", ")} | ${(median(rates[i]!) / median(rates[0]!)).toFixed(2)} | ${s.pipelined} | ${s.maxInFlight} | ${((s.completed + s.failed) / Math.max(1, s.messagesSent)).toFixed(1)} / ${((s.completed + s.failed) / Math.max(1, s.messagesReceived)).toFixed(1)} |`;
    }),
  ];
  console.log(lines.join("\n"));
  await mkdir(path.join(repoRoot(), "bench/results"), { recursive: true });
  await writeFile(path.join(repoRoot(), "bench/results/pool.md"), lines.join("\n") + "\n");
  await Promise.all(pools.map((p) => p.close()));
}

await main();
