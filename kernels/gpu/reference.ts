// The GPU examples' JS side: same task layouts as the WASM gemm and mandelbrot (so one set of
// inputs feeds every backend), plus float32 references and tolerances for GPU results.
import { gemm } from "../reference/gemm.js";
import { mandelbrot } from "../reference/mandelbrot.js";
import type { CheckResult } from "../reference/types.js";

export interface GpuExample {
  name: "gemm_gpu" | "mandelbrot_gpu";
  /** The WASM example with the same input/output layout. */
  wasm: typeof gemm;
  makeTasks: typeof gemm.makeTasks;
  /** Plain-JS float32 reference. */
  reference(input: Uint8Array): Uint8Array;
  check(input: Uint8Array, output: Uint8Array): CheckResult;
}

const f = Math.fround;

/** Mandelbrot with every operation rounded to float32, as a GPU computes it. */
function mandelbrotF32(input: Uint8Array): Uint8Array {
  const d = new DataView(input.buffer, input.byteOffset, input.byteLength);
  const x0 = f(d.getFloat64(0, true));
  const y0 = f(d.getFloat64(8, true));
  const dx = f(d.getFloat64(16, true));
  const dy = f(d.getFloat64(24, true));
  const width = d.getUint32(32, true);
  const height = d.getUint32(36, true);
  const maxIter = d.getUint32(40, true);
  const out = new Uint32Array(width * height);
  for (let row = 0; row < height; row++) {
    const cy = f(y0 + f(row * dy));
    for (let col = 0; col < width; col++) {
      const cx = f(x0 + f(col * dx));
      let x = 0;
      let y = 0;
      let n = 0;
      for (let i = 0; i < maxIter; i++) {
        const x2 = f(x * x);
        const y2 = f(y * y);
        if (f(x2 + y2) > 4) break;
        y = f(f(f(2 * x) * y) + cy);
        x = f(f(x2 - y2) + cx);
        n++;
      }
      out[row * width + col] = n;
    }
  }
  return new Uint8Array(out.buffer);
}

/**
 * Escape counts are chaotic near the set's boundary: one float32 rounding difference (a fused
 * multiply-add, a different but legal GLSL rounding) changes a count there. So: at most 1% of
 * pixels may differ from the float32 reference, and the mean count within 1%.
 */
export const MANDELBROT_MAX_DIFF_FRACTION = 0.01;

function checkMandelbrotF32(input: Uint8Array, output: Uint8Array): CheckResult {
  const ref = new Uint32Array(mandelbrotF32(input).buffer);
  if (output.byteLength !== ref.byteLength) return { ok: false, detail: `output has ${output.byteLength} bytes, expected ${ref.byteLength}` };
  const got = new Uint32Array(output.buffer.slice(output.byteOffset, output.byteOffset + output.byteLength));
  let diff = 0;
  let sumGot = 0;
  let sumRef = 0;
  for (let i = 0; i < ref.length; i++) {
    if (got[i] !== ref[i]) diff++;
    sumGot += got[i]!;
    sumRef += ref[i]!;
  }
  const frac = diff / ref.length;
  const meanErr = Math.abs(sumGot - sumRef) / Math.max(1, sumRef);
  const ok = frac <= MANDELBROT_MAX_DIFF_FRACTION && meanErr <= 0.01;
  return { ok, detail: `${diff} of ${ref.length} pixels differ from the float32 reference (${(frac * 100).toFixed(3)}%), mean count off by ${(meanErr * 100).toFixed(3)}%` };
}

export const gpuExamples: Record<GpuExample["name"], GpuExample> = {
  gemm_gpu: {
    name: "gemm_gpu",
    wasm: gemm,
    makeTasks: (o) => gemm.makeTasks(o),
    reference: (input) => gemm.reference(input),
    // gemm's check already allows float32 accumulation error: |err| ≤ (k+2)·eps·Σ|a·b|.
    check: (input, output) => gemm.check(input, output),
  },
  mandelbrot_gpu: {
    name: "mandelbrot_gpu",
    wasm: mandelbrot,
    makeTasks: (o) => mandelbrot.makeTasks(o),
    reference: mandelbrotF32,
    check: checkMandelbrotF32,
  },
};
