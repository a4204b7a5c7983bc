// Copy-path bench (issue 12): what one agent pays per task around the kernel, for saxpy over
// 1M floats (8 MiB in: x and y; 4 MiB out), before and after, in the same run.
//
//   npm run build:ts && node dist/bench/kernels/copy-path.js --baseline /path/to/main/dist
//   ... --rounds 6 --reps 15      (more samples; defaults 4 and 10)
//
// --baseline is another build's dist/ folder (e.g. main's, built there with `npm run build:ts`):
// its runWasmKernel and WorkerPool are the "before". Rounds alternate before and after so load
// from other work hits both alike; medians pool every round's samples. Figures:
//   kernel          distx_run alone, on a reused pre-sized memory holding the input (as bench/kernels/run.ts)
//   runWasmKernel   the whole task on one thread: memory, instantiate, input in, run, output out,
//                   with a MemoryPool zeroing on release (warm), without one (fresh memory), and
//                   "between tasks": zeroing deferred to between tasks as the agent's worker does
//                   it (after its reply is posted) and the output's buffer given back to an
//                   OutputPool (where the build has one), both outside the timed part; the
//                   back-to-back row times the same with the zeroing and the give-back inside
//   agent pool      WorkerPool.run() of one task at a time, to its result on the main thread, with the
//                   input transferred (an ArrayBuffer) or by reference (a SharedArrayBuffer, as an
//                   agent holds inputs of 64 KiB and more: agent/blob-cache.ts); where the build
//                   recycles outputs (PoolResult.release), the pool is made as the agent makes it
//                   (outputPool 64 MiB) and each result is given back once read, as the agent
//                   does once the scheduler has it
//   floor           the machine's own costs of the copies any task of this size needs (same run)
// Writes bench/results/kernel-copy-path.json and the "Copy path" section of bench/results/kernels.md.
import v8 from "node:v8";
v8.setFlagsFromString("--no-liftoff");

import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { MemoryPool, OutputPool, runWasmKernel } from "../../agent/wasm/run-kernel.js";
import { WorkerPool } from "../../agent/pool/worker-pool.js";
import { compileWasmKernel } from "../../common/kernel-abi.js";
import { repoRoot } from "../../common/paths.js";
import { exampleKernels } from "../../kernels/reference/index.js";

const arg = (name: string): string | undefined => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : undefined;
};
const ROUNDS = Number(arg("rounds") ?? 4);
const REPS = Number(arg("reps") ?? 10);
const N = 1 << 20;
const LIMIT = 512 * 2 ** 20;
const SECTION_START = "<!-- copy-path:start -->";
const SECTION_END = "<!-- copy-path:end -->";

type Run = (module: WebAssembly.Module, input: Uint8Array, options: { memoryLimitBytes: number; seed?: number; memoryPool?: unknown; outputPool?: unknown }) => ArrayBuffer;
interface Pool {
  scrub(): number;
}
interface Outputs {
  give(b: ArrayBuffer): void;
}
interface Build {
  runWasmKernel: Run;
  MemoryPool: new (o?: { deferZeroing?: boolean }) => Pool;
  /** Absent in builds before output buffers were pooled. */
  OutputPool?: new () => Outputs;
  /** outputPool: ignored by builds before the worker path recycled outputs (their results carry no release). */
  WorkerPool: new (o: { size: number; outputPool?: { maxTotalBytes: number } }) => { run(t: object): { promise: Promise<{ output: Buffer; release?: () => void }> }; close(): Promise<void> };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const now = () => performance.now();
/** `between` runs after each call, outside the timing (what a worker does while it waits for the next task). */
function times(once: () => void, reps = REPS, between?: () => void): number[] {
  once();
  between?.();
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = now();
    once();
    t.push(now() - t0);
    between?.();
  }
  return t;
}
async function timesAsync(once: () => Promise<void>, reps = REPS): Promise<number[]> {
  await once();
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = now();
    await once();
    t.push(now() - t0);
  }
  return t;
}

async function loadBaseline(dir: string): Promise<Build> {
  const file = (p: string) => pathToFileURL(path.resolve(dir, p)).href;
  if (!existsSync(path.resolve(dir, "agent/wasm/run-kernel.js"))) throw new Error(`--baseline ${dir}: no agent/wasm/run-kernel.js there (give a built dist/ folder)`);
  const rk = (await import(file("agent/wasm/run-kernel.js"))) as Build;
  const wp = (await import(file("agent/pool/worker-pool.js"))) as Pick<Build, "WorkerPool">;
  return { runWasmKernel: rk.runWasmKernel, MemoryPool: rk.MemoryPool, ...(rk.OutputPool ? { OutputPool: rk.OutputPool } : {}), WorkerPool: wp.WorkerPool };
}

async function main(): Promise<void> {
  const baselineDir = arg("baseline");
  if (!baselineDir) throw new Error("usage: copy-path.js --baseline <a built dist/ folder, e.g. main's>");
  const before = await loadBaseline(baselineDir);
  const after: Build = { runWasmKernel: runWasmKernel as unknown as Run, MemoryPool: MemoryPool as unknown as Build["MemoryPool"], OutputPool: OutputPool as unknown as Build["OutputPool"], WorkerPool: WorkerPool as unknown as Build["WorkerPool"] };
  const root = repoRoot();
  const module = await compileWasmKernel(await readFile(path.join(root, "build/kernels/saxpy.wasm")));
  const input = exampleKernels.saxpy!.makeTasks({ tasks: 1, size: N, seed: 1 })[0]!;
  const outBytes = N * 4;
  const load = { before: os.loadavg() };
  const shared = new Uint8Array(new SharedArrayBuffer(input.byteLength));
  shared.set(input);

  // The kernel alone (as bench/kernels/run.ts times it).
  const pages = Math.ceil((input.byteLength * 2 + 64 * 2 ** 20) / 65536);
  const warm = new WebAssembly.Memory({ initial: pages, maximum: pages });
  let at = -1;
  const kernelOnce = (): number => {
    const e = new WebAssembly.Instance(module, { env: { memory: warm, abort: () => { throw new Error("abort"); }, seed: () => 1 } }).exports as unknown as { distx_alloc(n: number): number; distx_run(p: number, n: number): number };
    const p = e.distx_alloc(input.byteLength);
    if (p !== at) new Uint8Array(warm.buffer, p, input.byteLength).set(input), (at = p);
    const t0 = now();
    e.distx_run(p, input.byteLength);
    return now() - t0;
  };
  // The floor: the copies a task of this size needs, on warm memory, and one output into a fresh buffer.
  const taskBytes = (Math.ceil((input.byteLength + outBytes) / 65536) + 3) * 65536;
  const scratch = new WebAssembly.Memory({ initial: taskBytes / 65536 });
  const u8 = new Uint8Array(scratch.buffer);

  const s: Record<string, number[]> = {};
  const add = (k: string, t: number[]) => (s[k] ??= []).push(...t);
  // As the agent makes its pool (outputPoolMb default 64).
  const agentPool = { size: 1, outputPool: { maxTotalBytes: 64 * 2 ** 20 } };
  const pools = { before: new before.WorkerPool(agentPool), after: new after.WorkerPool(agentPool) };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      console.log(`round ${round + 1}/${ROUNDS}`);
      add("kernel", Array.from({ length: REPS + 1 }, kernelOnce).slice(1));
      add("floor: input into warm memory", times(() => u8.set(input, 65536)));
      add("floor: zero the task's memory", times(() => u8.fill(0)));
      add("floor: output into a fresh buffer", times(() => scratch.buffer.slice(65536, 65536 + outBytes)));
      for (const [name, b] of [["before", before], ["after", after]] as const) {
        const memoryPool = new b.MemoryPool();
        add(`runWasmKernel, pooled memory: ${name}`, times(() => b.runWasmKernel(module, input, { memoryLimitBytes: LIMIT, seed: 1, memoryPool })));
        add(`runWasmKernel, fresh memory: ${name}`, times(() => b.runWasmKernel(module, input, { memoryLimitBytes: LIMIT, seed: 1 })));
        // As the agent's worker: zeroing deferred until after the reply; the output's buffer comes back once sent.
        const deferred = new b.MemoryPool({ deferZeroing: true });
        const outputPool = b.OutputPool ? new b.OutputPool() : undefined;
        let out: ArrayBuffer | undefined;
        const task = () => void (out = b.runWasmKernel(module, input, { memoryLimitBytes: LIMIT, seed: 1, memoryPool: deferred, ...(outputPool ? { outputPool } : {}) }));
        const betweenTasks = () => (deferred.scrub(), outputPool?.give(out!));
        add(`runWasmKernel, between tasks: ${name}`, times(task, REPS, betweenTasks));
        add(`runWasmKernel, back to back: ${name}`, times(() => (task(), betweenTasks())));
        const pool = pools[name];
        // A fresh input per task, made outside the timing (an agent gets one from the network).
        let next = input.slice();
        add(`agent pool, input transferred: ${name}`, await timesAsync(async () => {
          const r = await pool.run({ kernelId: "saxpy", module, input: next, timeoutMs: 60_000, memoryLimitBytes: LIMIT }).promise;
          if (r.output.byteLength !== outBytes) throw new Error(`saxpy output of ${r.output.byteLength} bytes`);
          r.release?.();
          next = input.slice();
        }));
        // How an agent gets an input this big: by reference, fetched once into shared memory (agent/blob-cache.ts).
        add(`agent pool, input by reference: ${name}`, await timesAsync(async () => {
          const r = await pool.run({ kernelId: "saxpy", module, input: shared, timeoutMs: 60_000, memoryLimitBytes: LIMIT }).promise;
          if (r.output.byteLength !== outBytes) throw new Error(`saxpy output of ${r.output.byteLength} bytes`);
          r.release?.();
        }));
      }
    }
  } finally {
    await Promise.all([pools.before.close(), pools.after.close()]);
  }
  const med = Object.fromEntries(Object.entries(s).map(([k, v]) => [k, median(v)]));
  const kernel = med.kernel!;
  // The fastest sample too: on a shared, loaded machine preemption lands more often in longer
  // timings, which inflates their medians more; the minimum is what the work costs unpreempted.
  const minKernel = Math.min(...s.kernel!);
  const rows = Object.entries(med).map(([k, v]) => ({ what: k, medianMs: v, overKernel: v / kernel, minMs: Math.min(...s[k]!), minOverKernel: Math.min(...s[k]!) / minKernel, samples: s[k]!.length }));
  const ratio = (what: string) => med[`${what}: before`]! / med[`${what}: after`]!;
  const speedups = {
    "runWasmKernel, between tasks (agent's worker)": ratio("runWasmKernel, between tasks"),
    "runWasmKernel, back to back": ratio("runWasmKernel, back to back"),
    "runWasmKernel, pooled memory": ratio("runWasmKernel, pooled memory"),
    "runWasmKernel, fresh memory": ratio("runWasmKernel, fresh memory"),
    "agent pool, input transferred": ratio("agent pool, input transferred"),
    "agent pool, input by reference": ratio("agent pool, input by reference"),
  };
  const floor = med["floor: input into warm memory"]! + med["floor: zero the task's memory"]! + med["floor: output into a fresh buffer"]!;
  const report = {
    generatedAt: new Date().toISOString(),
    command: `node dist/bench/kernels/copy-path.js --baseline ${baselineDir} --rounds ${ROUNDS} --reps ${REPS}`,
    machine: { cpu: os.cpus()[0]?.model ?? "unknown", cores: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, os: `${os.type()} ${os.release()}` },
    loadAverage: { before: load.before.map((x) => +x.toFixed(2)), after: os.loadavg().map((x) => +x.toFixed(2)) },
    task: { kernel: "saxpy", floats: N, inputBytes: input.byteLength, outputBytes: outBytes },
    goal: "runWasmKernel whole task <= 2x the kernel's own time",
    rows,
    speedups,
    floorMs: floor,
  };
  for (const r of rows) console.log(`${r.what.padEnd(44)} ${r.medianMs.toFixed(3).padStart(9)} ms  ${r.overKernel.toFixed(1).padStart(7)}x kernel   min ${r.minMs.toFixed(3).padStart(9)} ms ${r.minOverKernel.toFixed(1).padStart(6)}x`);
  for (const [k, v] of Object.entries(speedups)) console.log(`before/after ${k}: ${v.toFixed(2)}x`);
  await writeFile(path.join(root, "bench/results/kernel-copy-path.json"), JSON.stringify(report, null, 2) + "\n");
  const mdPath = path.join(root, "bench/results/kernels.md");
  const md = existsSync(mdPath) ? await readFile(mdPath, "utf8") : "# Kernel bench\n";
  await writeFile(mdPath, withCopyPathSection(md, markdown(report)));
  console.log("wrote bench/results/kernel-copy-path.json and the Copy path section of bench/results/kernels.md");
}

/** Puts `section` between the copy-path markers of `md` (replacing what was there), or at its end. */
function withCopyPathSection(md: string, section: string): string {
  const block = `${SECTION_START}\n${section.trimEnd()}\n${SECTION_END}\n`;
  const a = md.indexOf(SECTION_START);
  const b = md.indexOf(SECTION_END);
  if (a >= 0 && b > a) return md.slice(0, a) + block + md.slice(b + SECTION_END.length).replace(/^\n/, "");
  return `${md.trimEnd()}\n\n${block}`;
}

function markdown(r: { generatedAt: string; command: string; machine: Record<string, unknown>; loadAverage: { before: number[]; after: number[] }; rows: { what: string; medianMs: number; overKernel: number; minMs: number; minOverKernel: number; samples: number }[]; speedups: Record<string, number>; floorMs: number }): string {
  const m = r.machine;
  const kernel = r.rows.find((x) => x.what === "kernel")!.medianMs;
  const row = (what: string) => r.rows.find((x) => x.what === what);
  const ratioOf = (what: string) => `${((row(what)?.medianMs ?? NaN) / kernel).toFixed(1)}× (fastest samples: ${(row(what)?.minOverKernel ?? NaN).toFixed(1)}×)`;
  const lines = [
    "## Copy path: the whole task around the kernel (saxpy, 1M floats: 8 MiB in, 4 MiB out)",
    "",
    `Generated ${r.generatedAt} by \`${r.command}\` (bench/kernels/copy-path.ts). Before = the baseline build, after = this one, alternating in the same run; medians.`,
    "",
    `**Machine:** ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, node ${m.node}, ${m.os}. **Load average** (1/5/15 min) ${r.loadAverage.before.join(" / ")} at start, ${r.loadAverage.after.join(" / ")} at end.`,
    "",
    "| what | median ms | × kernel | min ms | min × kernel's min | samples |",
    "|---|---:|---:|---:|---:|---:|",
    ...r.rows.map((x) => `| ${x.what} | ${x.medianMs.toFixed(3)} | ${x.overKernel.toFixed(1)} | ${x.minMs.toFixed(3)} | ${x.minOverKernel.toFixed(1)} | ${x.samples} |`),
    "",
    "| before / after (speed-up) | ratio |",
    "|---|---:|",
    ...Object.entries(r.speedups).map(([k, v]) => `| ${k} | ${v.toFixed(2)}× |`),
    "",
    `Goal (issue 12): runWasmKernel whole task ≤ 2× the kernel's own time. The agent's whole path, one task at a time through its worker pool to the result on the main thread: ${ratioOf("agent pool, input by reference: after")} with the input by reference (${ratioOf("agent pool, input by reference: before")} for the baseline), ${ratioOf("agent pool, input transferred: after")} with it transferred (${ratioOf("agent pool, input transferred: before")}). runWasmKernel alone: ${ratioOf("runWasmKernel, between tasks: after")} between tasks (the agent's worker's way: the memory zeroed after the reply is posted, the output's buffer given back), ${ratioOf("runWasmKernel, back to back: after")} back to back, against ${ratioOf("runWasmKernel, between tasks: before")} for the baseline between tasks (its output in a recycled buffer too, where its build has an OutputPool) and ${ratioOf("runWasmKernel, pooled memory: before")} on its pooled path. The floor rows are the copies any task of this size needs, measured alone: the input into warm memory, zeroing the memory for the next tenant, the output into a fresh transferable buffer. The input copy alone is ${ratioOf("floor: input into warm memory")} the kernel, which runs on cache-hot data it does not have to bring in: while the ABI copies 8 MiB in and 4 MiB out, kernel + copies is already above 2× here.`,
    "",
    "Notes:",
    "",
    "- Pooled memory: kept by size class, grown ones included (agent/wasm/memory-pool.ts), zeroed whole before reuse. Not only up to the allocator's high-water mark: a hostile kernel can write anywhere below its memory's size, so the size is the only sound bound (test/unit/memory-pool.test.ts has a kernel read all its memory past its input after a task that grew, scribbled and trapped, and see zeros). The agent's worker zeroes after posting its replies, so the zeroing leaves the task's latency, not the worker's busy time: compare the between-tasks and back-to-back rows.",
    "- Output buffers: runWasmKernel copies the output into a buffer from an OutputPool when given one (agent/wasm/output-pool.ts): exactly the output's length, every byte overwritten, so a reused buffer holds nothing of an earlier output. A fresh buffer's first-touch page faults are the floor's largest row on this VM. On the agent's real path the pool is on the main thread (WorkerPool outputPool, agent config outputPoolMb): an output is given back once the scheduler has it (the session wrote its update, the broker acknowledged it, or its upload by reference is done) and goes, transferred, with a later task of its kernel to the worker, which writes that task's output into it. The agent-pool rows of this build give each result back once read, as the agent does once it is sent; the baseline's pool has no such path (fresh buffer per output) where it predates it.",
    "- The input is copied once, from the caller's bytes (a transferred buffer or the blob cache's SharedArrayBuffer, read in place) into the memory at distx_alloc's pointer; kernel code (start function, distx_alloc) runs before that copy, so the memory must already be clean then, which is why the input cannot be written into unzeroed memory to save the zeroing of its range.",
    "- What still separates the agent's path from 2× the kernel (measured on this VM, probe of the pool's own timings under load: the whole task on the main thread exceeds the worker's runWasmKernel time by ~0.2 ms, the message round trip and bookkeeping): inside runWasmKernel, the input copy (8 MiB, the floor's first row, ~1.7× the kernel), the output copy into the recycled buffer (4 MiB, ~1.6× the kernel at its fastest) and the instantiation; and the zeroing of the task's memory for the next tenant (~1×), which is on the critical path when tasks come one at a time (the worker zeroes right after posting its reply, before the next task arrives). Kernel + these copies is already ≈ 4–5× the kernel, so 2× needs an ABI change rather than a faster copy path: the kernel reading its input where it lies (a shared memory, or the host placing the input before any kernel code runs, so that its range need not be zeroed first) and an output the host can hand on without copying.",
    "- The fresh-memory rows are runWasmKernel without a pool (tests, `distx kernel run`): unchanged, by design.",
    "- The kernel row is cache-hot and, on a loaded machine, noisy: compare rows within one run only. The machine is shared; the load average says how busy it was.",
  ];
  return lines.join("\n") + "\n";
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
