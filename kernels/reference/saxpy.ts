// saxpy: y = a*x + y over float32. Layout: kernels/assembly/examples/saxpy.ts.
//   input  f32 a, u32 n, f32 x[n], f32 y[n]    output f32 y[n]
// size = total elements in the job (default 2^20), split into contiguous chunks.
import type { ExampleKernel } from "./types.js";
import { asBytes, compareFloats, f32, F32_EPS, fillUniform, fmtInt, positiveInt, splitRange, view } from "./util.js";

const A = 1.5;

function parse(input: Uint8Array): { a: number; n: number; x: Float32Array; y: Float32Array } {
  if (input.byteLength < 8) throw new RangeError("saxpy input shorter than its 8-byte header");
  const d = view(input);
  const a = d.getFloat32(0, true);
  const n = d.getUint32(4, true);
  if (input.byteLength < 8 + n * 8) throw new RangeError(`saxpy input of ${input.byteLength} bytes is too short for n=${n}`);
  return { a, n, x: f32(input, 8, n), y: f32(input, 8 + n * 4, n) };
}

export function saxpyInput(a: number, x: Float32Array, y: Float32Array): Uint8Array {
  const n = x.length;
  const bytes = new Uint8Array(8 + n * 8);
  const d = view(bytes);
  d.setFloat32(0, a, true);
  d.setUint32(4, n, true);
  new Float32Array(bytes.buffer, 8, n).set(x);
  new Float32Array(bytes.buffer, 8 + n * 4, n).set(y);
  return bytes;
}

export const saxpy: ExampleKernel = {
  name: "saxpy",
  description: "y = a*x + y over float32 vectors (memory-bound; SIMD f32x4)",
  sizeHelp: "total vector length across the job (default 1,048,576); split into contiguous chunks",
  defaultSize: 1 << 20,
  makeTasks({ tasks, size, seed = 1 }) {
    const n = positiveInt(size, this.defaultSize, "size");
    const x = fillUniform(new Float32Array(n), seed);
    const y = fillUniform(new Float32Array(n), seed + 1);
    return splitRange(n, tasks).map(([s, e]) => saxpyInput(A, x.subarray(s, e), y.subarray(s, e)));
  },
  reference(input) {
    const { a, n, x, y } = parse(input);
    const out = new Float32Array(n);
    const fa = Math.fround(a);
    for (let i = 0; i < n; i++) out[i] = Math.fround(fa * x[i]!) + y[i]!;
    return asBytes(out);
  },
  check(input, output) {
    const { a, n, x, y } = parse(input);
    if (output.byteLength !== n * 4) return { ok: false, detail: `output has ${output.byteLength} bytes, expected ${n * 4}` };
    const want = new Float32Array(this.reference(input).buffer);
    return compareFloats(f32(output, 0, n), want, (i) => 2 * F32_EPS * (Math.abs(a * x[i]!) + Math.abs(y[i]!)) + 1e-38);
  },
  summarize(inputs, outputs) {
    let n = 0;
    let sum = 0;
    for (const out of outputs) {
      const y = f32(out, 0, out.byteLength / 4);
      n += y.length;
      for (let i = 0; i < y.length; i++) sum += y[i]!;
    }
    return `saxpy over ${fmtInt(n)} floats in ${fmtInt(inputs.length)} tasks: sum(y) ≈ ${sum.toPrecision(7)}`;
  },
  flops(input) {
    return 2 * view(input).getUint32(4, true);
  },
};
