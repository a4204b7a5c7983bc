// gemm: C = A·B over float32, row-major. Layout: kernels/assembly/examples/gemm.ts.
//   input  u32 m, u32 n, u32 k, u32 0, f32 A[m*k], f32 B[k*n]    output f32 C[m*n]
// size = the square dimension (m = n = k, default 256). The job is split by row blocks:
// task t gets rows [r0, r1) of A and all of B, and returns rows [r0, r1) of C.
import type { ExampleKernel } from "./types.js";
import { asBytes, f32, F32_EPS, fillUniform, fmtInt, positiveInt, splitRange, view } from "./util.js";

interface Gemm {
  m: number;
  n: number;
  k: number;
  a: Float32Array;
  b: Float32Array;
}

function parse(input: Uint8Array): Gemm {
  if (input.byteLength < 16) throw new RangeError("gemm input shorter than its 16-byte header");
  const d = view(input);
  const m = d.getUint32(0, true);
  const n = d.getUint32(4, true);
  const k = d.getUint32(8, true);
  const need = 16 + (m * k + k * n) * 4;
  if (input.byteLength < need) throw new RangeError(`gemm input of ${input.byteLength} bytes is too short for ${m}x${n}x${k}`);
  return { m, n, k, a: f32(input, 16, m * k), b: f32(input, 16 + m * k * 4, k * n) };
}

/** Builds one gemm task input from A (m×k) and B (k×n), both row-major. */
export function gemmInput(m: number, n: number, k: number, a: Float32Array, b: Float32Array): Uint8Array {
  const bytes = new Uint8Array(16 + (m * k + k * n) * 4);
  const d = view(bytes);
  d.setUint32(0, m, true);
  d.setUint32(4, n, true);
  d.setUint32(8, k, true);
  new Float32Array(bytes.buffer, 16, m * k).set(a.subarray(0, m * k));
  new Float32Array(bytes.buffer, 16 + m * k * 4, k * n).set(b.subarray(0, k * n));
  return bytes;
}

/** flags bit 0 of the header: B is not in the task input but the job's shared input 0. */
export const GEMM_B_SHARED = 1;

/** A task input for the shared-B form: the header (flags = GEMM_B_SHARED) and A's rows only. */
export function gemmInputSharedB(m: number, n: number, k: number, a: Float32Array): Uint8Array {
  const bytes = new Uint8Array(16 + m * k * 4);
  const d = view(bytes);
  d.setUint32(0, m, true);
  d.setUint32(4, n, true);
  d.setUint32(8, k, true);
  d.setUint32(12, GEMM_B_SHARED, true);
  new Float32Array(bytes.buffer, 16, m * k).set(a.subarray(0, m * k));
  return bytes;
}

export const gemm: ExampleKernel = {
  name: "gemm",
  description: "C = A·B, float32 matrix multiply (blocked, 4x8 f32x4 register micro-kernel); split by row blocks",
  sizeHelp: "matrix dimension n for n×n×n (default 256); tasks are row blocks of A and C, each with all of B",
  defaultSize: 256,
  makeTasks({ tasks, size, seed = 1 }) {
    const n = positiveInt(size, this.defaultSize, "size");
    const a = fillUniform(new Float32Array(n * n), seed);
    const b = fillUniform(new Float32Array(n * n), seed + 1);
    return splitRange(n, tasks).map(([r0, r1]) => gemmInput(r1 - r0, n, n, a.subarray(r0 * n, r1 * n), b));
  },
  reference(input) {
    // The plain loop, in i-k-j order so the inner loop runs along rows of B and C.
    const { m, n, k, a, b } = parse(input);
    const c = new Float32Array(m * n);
    for (let i = 0; i < m; i++) {
      const ci = i * n;
      for (let p = 0; p < k; p++) {
        const aip = a[i * k + p]!;
        const bp = p * n;
        for (let j = 0; j < n; j++) c[ci + j] = c[ci + j]! + aip * b[bp + j]!;
      }
    }
    return asBytes(c);
  },
  check(input, output) {
    const { m, n, k, a, b } = parse(input);
    if (output.byteLength !== m * n * 4) return { ok: false, detail: `output has ${output.byteLength} bytes, expected ${m * n * 4}` };
    const got = f32(output, 0, m * n);
    // Exact-ish reference in float64, with the sum of |a||b| per element for the error bound:
    // a float32 dot product of length k is within about k·eps·Σ|a·b| of the exact value.
    const ref = new Float64Array(n);
    const abs = new Float64Array(n);
    let worst = 0;
    for (let i = 0; i < m; i++) {
      ref.fill(0);
      abs.fill(0);
      for (let p = 0; p < k; p++) {
        const aip = a[i * k + p]!;
        const aabs = Math.abs(aip);
        const bp = p * n;
        for (let j = 0; j < n; j++) {
          const bj = b[bp + j]!;
          ref[j] = ref[j]! + aip * bj;
          abs[j] = abs[j]! + aabs * Math.abs(bj);
        }
      }
      for (let j = 0; j < n; j++) {
        const g = got[i * n + j]!;
        const tol = (k + 2) * F32_EPS * abs[j]! + 1e-30;
        const err = Math.abs(g - ref[j]!);
        if (!(err <= tol)) {
          return { ok: false, detail: `C[${i}][${j}] = ${g}, expected ${ref[j]} (±${tol.toExponential(2)})` };
        }
        worst = Math.max(worst, err / tol);
      }
    }
    return { ok: true, detail: `${fmtInt(m * n)} floats within k·eps·Σ|a·b| (worst ${(worst * 100).toFixed(2)}% of its bound)` };
  },
  summarize(inputs, outputs) {
    let rows = 0;
    let n = 0;
    let k = 0;
    let frob = 0;
    let sum = 0;
    for (let t = 0; t < inputs.length; t++) {
      const d = view(inputs[t]!);
      rows += d.getUint32(0, true);
      n = d.getUint32(4, true);
      k = d.getUint32(8, true);
      const out = outputs[t];
      if (!out) continue;
      const c = f32(out, 0, out.byteLength / 4);
      for (let i = 0; i < c.length; i++) {
        sum += c[i]!;
        frob += c[i]! * c[i]!;
      }
    }
    const gflop = (2 * rows * n * k) / 1e9;
    return `C = A·B for ${rows}×${n}×${k} in ${inputs.length} row blocks (${gflop.toFixed(2)} GFLOP): ‖C‖F ≈ ${Math.sqrt(frob).toPrecision(6)}, ΣC ≈ ${sum.toPrecision(6)}`;
  },
  flops(input) {
    const d = view(input);
    return 2 * d.getUint32(0, true) * d.getUint32(4, true) * d.getUint32(8, true);
  },
  shared: {
    // The same matrices as makeTasks, with B sent once as the shared input "B".
    makeTasks({ tasks, size, seed = 1 }) {
      const n = positiveInt(size, gemm.defaultSize, "size");
      const a = fillUniform(new Float32Array(n * n), seed);
      const b = fillUniform(new Float32Array(n * n), seed + 1);
      const inputs = splitRange(n, tasks).map(([r0, r1]) => gemmInputSharedB(r1 - r0, n, n, a.subarray(r0 * n, r1 * n)));
      return { inputs, shared: [{ name: "B", data: asBytes(b) }] };
    },
    inline(input, shared) {
      const d = view(input);
      if ((d.getUint32(12, true) & GEMM_B_SHARED) === 0) return input;
      const m = d.getUint32(0, true);
      const n = d.getUint32(4, true);
      const k = d.getUint32(8, true);
      const b = shared[0];
      if (!b || b.byteLength < k * n * 4) throw new RangeError("gemm with a shared B needs shared input 0 of k*n floats");
      return gemmInput(m, n, k, f32(input, 16, m * k), f32(b, 0, k * n));
    },
  },
};
