// The GPU executor: a child process of the agent that runs gpu.js kernels. headless-gl is not
// context-aware (it cannot load in worker threads), and a GL driver fault or a runaway shader
// must not take the agent down, so GPU kernels run here, one task at a time.
//
// The agent starts it with a minimal environment (no credentials), a private temp cwd and a
// heap cap; it kills it on a task timeout and restarts it when it dies. Kernel modules are
// re-validated here (parseGpuModule), and gpu.js compiles only the text generated from the
// checked syntax tree (compileGpuKernel): never the bytes the client sent.
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { compileGpuKernel, decodeTask, encodeOutput, GpuModuleError, MAX_GPU_DIMENSION, parseGpuModule, type CompiledKernelSource, type GpuKernelModule } from "../../kernels/gpu/module.js";
import type { FromExecutor, GpuBackend, GpuMode, ToExecutor } from "./protocol.js";

const require = createRequire(import.meta.url);

// The slice of gpu.js used here (its own typings are incomplete for string kernels).
type Kernel = ((...args: unknown[]) => unknown) & { destroy?: () => void };
interface GPUType {
  createKernel(source: unknown, settings: object): Kernel;
}
interface GpuJs {
  GPU: new (settings: { mode: string }) => GPUType;
  input: (value: Float32Array, size: number[]) => unknown;
}
type IKernelRunShortcut = Kernel;

let gpujs: GpuJs;
let gpu: GPUType;
let backend: GpuBackend = "cpu";
let maxTextureSize = MAX_GPU_DIMENSION;
const modules = new Map<string, { module: GpuKernelModule; compiled: CompiledKernelSource }>();
const kernels = new Map<string, IKernelRunShortcut>();
const MAX_CACHED_KERNELS = 32;

function send(msg: FromExecutor): void {
  process.send?.(msg);
}

interface GlContext {
  RENDERER: number;
  MAX_TEXTURE_SIZE: number;
  getParameter(p: number): unknown;
  getExtension(name: string): Record<string, unknown> | null;
}

/** Opens a real 1×1 GL context with headless-gl: the only honest test that GL works here. */
function probeGl(): { renderer: string; maxTextureSize: number } {
  const createContext = require("gl") as (w: number, h: number, opts?: object) => GlContext | null;
  const ctx = createContext(1, 1, { preserveDrawingBuffer: false });
  if (!ctx) throw new Error("headless-gl could not create a context (no X display/GLX, or no GL driver)");
  const info = ctx.getExtension("WEBGL_debug_renderer_info");
  const renderer = String((info ? ctx.getParameter(info.UNMASKED_RENDERER_WEBGL as number) : undefined) ?? ctx.getParameter(ctx.RENDERER));
  const max = Number(ctx.getParameter(ctx.MAX_TEXTURE_SIZE));
  (ctx.getExtension("STACKGL_destroy_context") as { destroy?: () => void } | null)?.destroy?.();
  return { renderer, maxTextureSize: max };
}

/** A 2×2 matrix product through gpu.js in the chosen mode; throws unless the numbers are right. */
function selfTest(g: GPUType): void {
  const k = g.createKernel(
    "function (a, b) { return a[this.thread.y][0] * b[0][this.thread.x] + a[this.thread.y][1] * b[1][this.thread.x]; }",
    { output: [2, 2] },
  );
  const r = k([[1, 2], [3, 4]], [[5, 6], [7, 8]]) as Float32Array[];
  const flat = [...r[0]!, ...r[1]!];
  k.destroy?.();
  if (flat.join(",") !== "19,22,43,50") throw new Error(`gpu.js self-test returned ${flat.join(",")}, expected 19,22,43,50`);
}

function init(mode: GpuMode): void {
  gpujs = require("gpu.js") as GpuJs;
  let renderer = "gpu.js cpu mode";
  let glError: string | undefined;
  if (mode === "auto") {
    try {
      const probe = probeGl();
      const g = new gpujs.GPU({ mode: "headlessgl" });
      selfTest(g);
      gpu = g;
      backend = "headlessgl";
      renderer = probe.renderer;
      maxTextureSize = Math.min(probe.maxTextureSize, MAX_GPU_DIMENSION);
    } catch (err) {
      glError = (err as Error).message.split("\n")[0];
    }
  } else {
    glError = "GPU backend disabled (--gpu off)";
  }
  if (backend !== "headlessgl") {
    gpu = new gpujs.GPU({ mode: "cpu" });
    selfTest(gpu);
    backend = "cpu";
  }
  send({ type: "ready", backend, renderer, maxTextureSize, ...(glError ? { glError } : {}) });
}

function getModule(kernelId: string, bytes: Uint8Array): { module: GpuKernelModule; compiled: CompiledKernelSource } {
  const cached = modules.get(kernelId);
  if (cached) return cached;
  // Only registered kernels run: the id is the sha256 of exactly these bytes.
  const actual = createHash("sha256").update(bytes).digest("hex");
  if (actual !== kernelId) throw new GpuModuleError(`module bytes hash to ${actual}, not the kernel id ${kernelId}`);
  const module = parseGpuModule(bytes);
  const entry = { module, compiled: compileGpuKernel(module) };
  modules.set(kernelId, entry);
  return entry;
}

function getKernel(kernelId: string, m: GpuKernelModule, compiled: CompiledKernelSource, constants: Record<string, number>, output: number[]): { kernel: IKernelRunShortcut; compiled: boolean } {
  const key = `${kernelId}|${JSON.stringify(constants)}|${output.join("x")}`;
  const hit = kernels.get(key);
  if (hit) {
    kernels.delete(key); // LRU: move to the end
    kernels.set(key, hit);
    return { kernel: hit, compiled: false };
  }
  for (const d of output) {
    if (d > maxTextureSize) throw new GpuModuleError(`output dimension ${d} is above this GPU's texture size limit ${maxTextureSize}`);
  }
  // Keyed by the generated names: gpu.js sees none of the module's own names.
  const argumentTypes: Record<string, string> = {};
  m.args.forEach((a, i) => (argumentTypes[compiled.params[i]!] = a.kind === "scalar" ? "Float" : "Input"));
  const generatedConstants: Record<string, number> = {};
  for (const [name, generated] of compiled.constants) generatedConstants[generated] = constants[name]!;
  const kernel = gpu.createKernel(compiled.source, {
    output,
    constants: generatedConstants,
    argumentTypes,
    precision: "single",
    tactic: m.settings.tactic ?? "precision",
    loopMaxIterations: m.settings.loopMaxIterations ?? 1000,
    dynamicOutput: false,
    pipeline: false,
  } as never);
  kernels.set(key, kernel);
  while (kernels.size > MAX_CACHED_KERNELS) {
    const [oldKey, old] = kernels.entries().next().value as [string, IKernelRunShortcut];
    kernels.delete(oldKey);
    old.destroy?.();
  }
  return { kernel, compiled: true };
}

function run(msg: Extract<ToExecutor, { type: "run" }>): void {
  try {
    const { module: m, compiled: source } = getModule(msg.kernelId, msg.module);
    const task = decodeTask(m, msg.input);
    const t0 = performance.now();
    const { kernel, compiled } = getKernel(msg.kernelId, m, source, task.constants, task.output);
    const args = task.args.map((a) => (typeof a === "number" ? a : gpujs.input(a.data, a.size)));
    const t1 = performance.now();
    let result: unknown;
    try {
      result = kernel(...args);
    } catch (err) {
      // gpu.js builds the shader (or cpu function) on first call: failures there are the kernel's.
      throw new GpuModuleError(`gpu.js could not ${compiled ? "compile or run" : "run"} the kernel: ${(err as Error).message.split("\n")[0]}`);
    }
    const output = encodeOutput(m, task.output, result);
    send({ type: "result", id: msg.id, output, backend, runMs: performance.now() - t1, compileMs: compiled ? t1 - t0 : 0 });
  } catch (err) {
    const code = err instanceof GpuModuleError ? "INVALID_KERNEL" : "TRAP";
    send({ type: "error", id: msg.id, code, message: (err as Error).message });
  }
}

process.on("message", (msg: ToExecutor) => {
  if (msg.type === "init") {
    try {
      init(msg.mode);
    } catch (err) {
      // Not even cpu mode works: report and exit; the agent disables GPU kernels.
      process.stderr.write(`gpu executor cannot start: ${(err as Error).stack}\n`);
      process.exit(3);
    }
  } else if (msg.type === "run") run(msg);
});
// The agent going away closes the IPC channel: leave with it.
process.on("disconnect", () => process.exit(0));
