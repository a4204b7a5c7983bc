// The example kernels' JS side: task splitting, plain-JS references, checks and summaries.
// Used by `distx submit --example NAME`, the README demo, the end-to-end tests and the bench.
// Kernel sources: kernels/assembly/examples/<name>.ts; built by `npm run build:kernels`
// into build/kernels/<name>.wasm + <name>.manifest.json.
import { gemm } from "./gemm.js";
import { histogram } from "./histogram.js";
import { mandelbrot } from "./mandelbrot.js";
import { montecarloPi } from "./montecarlo_pi.js";
import { saxpy } from "./saxpy.js";
import type { ExampleKernel } from "./types.js";

export type { CheckResult, ExampleKernel, MakeTasksOptions } from "./types.js";
export { gemmInput } from "./gemm.js";
export { histogramInput } from "./histogram.js";
export { mandelbrotInput, type MandelbrotTile } from "./mandelbrot.js";
export { countHits, montecarloInput } from "./montecarlo_pi.js";
export { saxpyInput } from "./saxpy.js";
export { fillUniform, mulberry32, splitRange } from "./util.js";

export const exampleKernels: Record<string, ExampleKernel> = {
  saxpy,
  gemm,
  mandelbrot,
  montecarlo_pi: montecarloPi,
  histogram,
};

export const exampleKernelNames: string[] = Object.keys(exampleKernels);

export function getExampleKernel(name: string): ExampleKernel {
  const k = exampleKernels[name];
  if (!k) throw new Error(`unknown example kernel "${name}"; known: ${exampleKernelNames.join(", ")}`);
  return k;
}
