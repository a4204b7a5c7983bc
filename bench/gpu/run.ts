// GPU kernels bench: matrix multiply and mandelbrot at several sizes on
//   gpu.js headlessgl (through the real executor process: whatever GL this host has),
//   gpu.js cpu mode (executor process), AssemblyScript WASM (build/kernels/*.wasm, in-process),
//   plain JS (the references).
// Same task inputs for every backend. Each cell is the median of several runs after a warm-up
// (which includes shader compilation); ratios are against plain JS in this same run.
// Usage: node dist/bench/gpu/run.js [--quick] [--out bench/results]
import { readFile, writeFile, mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { GpuExecutorPool } from "../../agent/gpu/executor-pool.js";
import { readNvidiaSmi } from "../../agent/gpu/detect.js";
import { runWasmKernel } from "../../agent/wasm/run-kernel.js";
import { useOptimizingWasmTier } from "../../agent/wasm/tier.js";
import { compileWasmKernel } from "../../common/kernel-abi.js";
import { sha256Hex } from "../../common/hash.js";
import { builtKernelsDir, repoRoot } from "../../common/paths.js";
import { gpuExamples } from "../../kernels/gpu/reference.js";

useOptimizingWasmTier();
const quick = process.argv.includes("--quick");
const outArg = process.argv.indexOf("--out");
const outDir = outArg > 0 ? process.argv[outArg + 1]! : path.join(repoRoot(), "bench", "results");

const SIZES = { gemm_gpu: quick ? [128, 256] : [128, 256, 512], mandelbrot_gpu: quick ? [256, 512] : [256, 512, 1024] } as const;
const WASM = { gemm_gpu: "gemm", mandelbrot_gpu: "mandelbrot" } as const;
const flops = (name: keyof typeof SIZES, input: Uint8Array, output: Uint8Array) => gpuExamples[name].wasm.flops!(input, output);

async function median(fn: () => Promise<unknown> | unknown, runs: number): Promise<number> {
  await fn(); // warm-up: shader compile, JIT
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const s = performance.now();
    await fn();
    t.push(performance.now() - s);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)]!;
}

interface Row {
  kernel: string;
  size: number;
  backend: string;
  ms: number;
  gflops: number;
  vsJs: number;
  ok: boolean;
  detail: string;
}

async function main(): Promise<void> {
  const gl = new GpuExecutorPool({ mode: "auto", executors: 1, memoryLimitMb: 4096 });
  const glReady = await gl.start();
  const cpu = new GpuExecutorPool({ mode: "cpu", executors: 1, memoryLimitMb: 4096 });
  await cpu.start();
  const nvidia = await readNvidiaSmi();
  const rows: Row[] = [];
  for (const name of ["gemm_gpu", "mandelbrot_gpu"] as const) {
    const bytes = await readFile(path.join(builtKernelsDir(), `${name}.gpu.json`));
    const kernelId = sha256Hex(bytes);
    const wasm = await compileWasmKernel(await readFile(path.join(builtKernelsDir(), `${WASM[name]}.wasm`)));
    for (const size of SIZES[name]) {
      const [input] = gpuExamples[name].makeTasks({ tasks: 1, size });
      const runs = size >= 512 ? 3 : 5;
      const jsOut = gpuExamples[name].wasm.reference(input!);
      const fl = flops(name, input!, jsOut);
      const jsMs = await median(() => gpuExamples[name].wasm.reference(input!), runs);
      const cells: { backend: string; run: () => Promise<Uint8Array> | Uint8Array; check: (o: Uint8Array) => { ok: boolean; detail: string } }[] = [
        { backend: "js", run: () => gpuExamples[name].wasm.reference(input!), check: (o) => gpuExamples[name].wasm.check(input!, o) },
        { backend: "wasm", run: () => new Uint8Array(runWasmKernel(wasm, input!, { memoryLimitBytes: 512 * 1024 * 1024 })), check: (o) => gpuExamples[name].wasm.check(input!, o) },
        { backend: "gpu.js cpu", run: async () => (await cpu.run({ kernelId, module: bytes, input: input!, timeoutMs: 600_000 }).promise).output, check: (o) => gpuExamples[name].check(input!, o) },
      ];
      if (glReady.backend === "headlessgl") {
        cells.push({ backend: "gpu.js headlessgl", run: async () => (await gl.run({ kernelId, module: bytes, input: input!, timeoutMs: 600_000 }).promise).output, check: (o) => gpuExamples[name].check(input!, o) });
      }
      for (const c of cells) {
        const out = await c.run();
        const chk = c.check(out);
        const ms = c.backend === "js" ? jsMs : await median(c.run, runs);
        rows.push({ kernel: name.replace("_gpu", ""), size, backend: c.backend, ms, gflops: fl / (ms / 1000) / 1e9, vsJs: jsMs / ms, ok: chk.ok, detail: chk.detail });
        console.log(`${name} ${size} ${c.backend.padEnd(18)} ${ms.toFixed(2).padStart(10)} ms  ${(jsMs / ms).toFixed(2)}× js  ${chk.ok ? "ok" : "MISMATCH " + chk.detail}`);
      }
    }
  }
  await gl.close();
  await cpu.close();
  const host = {
    cpu: os.cpus()[0]?.model ?? "unknown",
    cores: os.availableParallelism(),
    node: process.version,
    glBackend: glReady.backend,
    glRenderer: glReady.renderer,
    glError: glReady.glError ?? null,
    nvidia: nvidia ?? null,
    note:
      nvidia && nvidia.length
        ? `GL on ${nvidia.map((g) => g.name).join(", ")} (check glRenderer: under Xvfb without the NVIDIA GLX driver, GL is still Mesa's software renderer)`
        : "no NVIDIA GPU: headlessgl ran on Mesa's software renderer (llvmpipe/softpipe under Xvfb, behind ANGLE) — GPU-path figures here measure a CPU rasteriser, not a GPU",
  };
  await mkdir(outDir, { recursive: true });
  const stamp = new Date().toISOString();
  await writeFile(path.join(outDir, "gpu.json"), JSON.stringify({ at: stamp, host, rows }, null, 2) + "\n");
  const md = [
    `# GPU kernels bench (${stamp})`,
    "",
    `Host: ${host.cpu}, ${host.cores} cores, Node ${host.node}. GL backend: ${host.glBackend} (renderer "${host.glRenderer}")${host.glError ? `; GL error: ${host.glError}` : ""}.`,
    "",
    `**${host.note}.**`,
    "",
    "One task per cell (gemm: n×n×n; mandelbrot: n×n pixels, maxIter 256); median wall time of 3–5 runs after a warm-up, measured at the caller (executor rows include the IPC round trip). `vs js` = plain-JS time / this time, same run.",
    "",
    "| kernel | size | backend | ms | GFLOP/s | vs js | matches reference |",
    "|---|---:|---|---:|---:|---:|---|",
    ...rows.map((r) => `| ${r.kernel} | ${r.size} | ${r.backend} | ${r.ms.toFixed(2)} | ${r.gflops.toFixed(2)} | ${r.vsJs.toFixed(2)}× | ${r.ok ? "yes" : "NO"} (${r.detail}) |`),
    "",
    "Mandelbrot GFLOP/s counts 8 flops per iteration of the float64 reference's counts. gpu.js rows run float32 (checked against the float32 reference, ≤1% boundary pixels may differ); js/wasm rows run float64.",
    "",
  ].join("\n");
  await writeFile(path.join(outDir, "gpu.md"), md);
  console.log(`wrote ${path.join(outDir, "gpu.json")} and gpu.md`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
