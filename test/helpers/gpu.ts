// Shared by the GPU tests: build the example modules, and find out (honestly) whether this
// machine can open a GL context. With DISTX_GPU_TESTS=require (CI, under xvfb-run) a missing
// GL backend fails the tests instead of skipping them.
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { GpuExecutorPool } from "../../agent/gpu/executor-pool.js";
import type { ExecutorReady } from "../../agent/gpu/protocol.js";
import { buildGpuKernel, type BuildGpuKernelResult } from "../../kernels/gpu/build.js";
import { repoRoot } from "../../common/paths.js";

export const REQUIRE_GL = process.env.DISTX_GPU_TESTS === "require";

export async function buildExamples(): Promise<Record<"gemm_gpu" | "mandelbrot_gpu", BuildGpuKernelResult>> {
  const outDir = mkdtempSync(path.join(os.tmpdir(), "distx-gpu-test-"));
  const src = (n: string) => path.join(repoRoot(), "kernels", "gpu", "examples", `${n}.gpu.js`);
  return {
    gemm_gpu: await buildGpuKernel(src("gemm_gpu"), { outDir }),
    mandelbrot_gpu: await buildGpuKernel(src("mandelbrot_gpu"), { outDir }),
  };
}

/** Starts one auto-mode executor and reports what it found, then stops it. */
export async function probeGl(): Promise<ExecutorReady> {
  const pool = new GpuExecutorPool({ mode: "auto", executors: 1, memoryLimitMb: 512 });
  try {
    return await pool.start();
  } finally {
    await pool.close();
  }
}
