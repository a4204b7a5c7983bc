// C and Rust kernels beside their AssemblyScript namesakes (#16 item 7): the same inputs, the
// same host path (a fresh instance over a reused memory; only distx_run is timed, as the WASM
// column of bench/kernels/run.ts), the three languages interleaved run by run (in a rotating
// order) so load from other work on a shared machine hits them alike. Ratios are C/AS and
// Rust/AS medians of one run.
// Run: npm run bench:kernel-langs (prints a markdown section; bench/results/kernels.md has the last one).
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { compileWasmKernel } from "../../common/kernel-abi.js";
import { useOptimizingWasmTier } from "../../agent/wasm/tier.js";
import { repoRoot } from "../../common/paths.js";
import { exampleKernels } from "../../kernels/reference/index.js";
import { buildKernel } from "../../kernels/toolchain/build.js";

// One task of each example: saxpy/histogram elements, gemm n×n×n, mandelbrot n×n pixels (maxIter 256), montecarlo_pi samples.
const SIZES: Record<string, number> = { saxpy: 1 << 20, histogram: 1 << 22, gemm: 256, mandelbrot: 512, montecarlo_pi: 4_000_000 };
// Interleaved run by run: in blocks of 15 runs, load from other work on a shared machine moved
// mandelbrot's C/AS ratio from 1.00 to 0.51 between two runs.
const RUNS = 90;

interface Exports {
  distx_alloc(n: number): number;
  distx_output_ptr(): number;
  distx_run(ptr: number, len: number): number;
}

// Every task here carries its whole input (gemm's B included): a kernel that imports the
// shared-input functions (ABI version 2) is told the job has none.
const noShared = { shared_input_len: () => -1, shared_input: () => { throw new Error("no shared input"); } };

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<void> {
  // TurboFan from the first call, as on an agent (agent/wasm/tier.ts): before any module is compiled.
  useOptimizingWasmTier();
  const root = repoRoot();
  const tmp = await mkdtemp(path.join(os.tmpdir(), "distx-bench-langs-"));
  const loadBefore = os.loadavg();
  const rows: string[] = [];
  const tools: Record<string, string> = {};
  try {
    for (const [name, size] of Object.entries(SIZES)) {
      const kernel = exampleKernels[name]!;
      const input = kernel.makeTasks({ tasks: 1, size, seed: 1 })[0]!;
      const sources: Record<string, string> = {
        AssemblyScript: path.join(root, "kernels/assembly/examples", `${name}.ts`),
        C: path.join(root, "kernels/c", `${name}.c`),
        Rust: path.join(root, "kernels/rust", name),
      };
      const runners: Record<string, () => number> = {};
      const outputs: Record<string, Uint8Array> = {};
      for (const [lang, src] of Object.entries(sources)) {
        const built = await buildKernel(src, { outDir: path.join(tmp, lang) });
        tools[lang] = built.manifest.compiler.version;
        const module = await compileWasmKernel(await readFile(built.wasmPath));
        const pages = Math.ceil((input.byteLength * 2 + 64 * 2 ** 20) / 65536);
        const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
        runners[lang] = () => {
          const e = new WebAssembly.Instance(module, { env: { memory, abort: () => { throw new Error("abort"); }, seed: () => 1, ...noShared } }).exports as unknown as Exports;
          const ptr = e.distx_alloc(input.byteLength);
          new Uint8Array(memory.buffer, ptr, input.byteLength).set(input);
          const t0 = performance.now();
          const len = e.distx_run(ptr, input.byteLength);
          const dt = performance.now() - t0;
          outputs[lang] = new Uint8Array(memory.buffer, e.distx_output_ptr(), len).slice();
          return dt;
        };
      }
      const times: Record<string, number[]> = { AssemblyScript: [], C: [], Rust: [] };
      for (const lang of Object.keys(runners)) for (let i = 0; i < 3; i++) runners[lang]!(); // warm-up (TurboFan)
      const langs = Object.keys(runners);
      for (let i = 0; i < RUNS; i++) {
        for (let j = 0; j < langs.length; j++) {
          const lang = langs[(i + j) % langs.length]!;
          times[lang]!.push(runners[lang]!());
        }
      }
      for (const lang of Object.keys(runners)) {
        const v = kernel.check(input, outputs[lang]!);
        if (!v.ok) throw new Error(`${name} (${lang}) output wrong: ${v.detail}`);
      }
      const as = median(times.AssemblyScript!);
      const c = median(times.C!);
      const rs = median(times.Rust!);
      rows.push(`| ${name} | ${size.toLocaleString("en-US")} | ${as.toFixed(3)} | ${c.toFixed(3)} | ${rs.toFixed(3)} | ${(c / as).toFixed(2)} | ${(rs / as).toFixed(2)} |`);
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  const loadAfter = os.loadavg();
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  const f = (l: number[]) => l.map((x) => x.toFixed(2)).join(" / ");
  console.log(
    [
      `## C and Rust beside AssemblyScript`,
      "",
      `Generated ${new Date().toISOString()} by \`npm run bench:kernel-langs\` (bench/kernels/langs.ts). One thread, V8 --no-liftoff as on an agent; ${RUNS} runs per language, interleaved run by run; medians of distx_run alone (fresh instance over a reused memory, as the WASM column above); outputs checked against the JS reference.`,
      "",
      `**Machine:** ${cpu}, ${os.cpus().length} cores; node ${process.version}. **Toolchains:** ${Object.entries(tools).map(([l, t]) => `${l}: ${t}`).join("; ")}.`,
      `**Load average** (1/5/15 min) at start ${f(loadBefore)}, at end ${f(loadAfter)} on ${os.cpus().length} cores.`,
      "",
      "| kernel | size | AssemblyScript ms | C ms | Rust ms | C/AS | Rust/AS |",
      "|---|---:|---:|---:|---:|---:|---:|",
      ...rows,
    ].join("\n"),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
