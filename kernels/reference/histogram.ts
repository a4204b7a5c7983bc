// histogram: 256 bins of one byte of each u32. Layout: kernels/assembly/examples/histogram.ts.
//   input  u32 n, u32 shift, u32 values[n]     output u32 counts[256]
// size = total values in the job (default 2^20) drawn from mulberry32(seed), binned by their
// top byte (shift 24); split into contiguous chunks, and the job's histogram is the sum.
import type { ExampleKernel } from "./types.js";
import { asBytes, compareExact, fmtInt, mulberry32, positiveInt, splitRange, u32, view } from "./util.js";

export const HISTOGRAM_BINS = 256;

export function histogramInput(values: Uint32Array, shift: number): Uint8Array {
  const bytes = new Uint8Array(8 + values.length * 4);
  const d = view(bytes);
  d.setUint32(0, values.length, true);
  d.setUint32(4, shift, true);
  new Uint32Array(bytes.buffer, 8, values.length).set(values);
  return bytes;
}

export const histogram: ExampleKernel = {
  name: "histogram",
  description: "256-bin histogram of one byte of u32 values (integer reduction; tasks' outputs add up)",
  sizeHelp: "total u32 values across the job (default 1,048,576), split into contiguous chunks",
  defaultSize: 1 << 20,
  makeTasks({ tasks, size, seed = 1 }) {
    const n = positiveInt(size, this.defaultSize, "size");
    const next = mulberry32(seed);
    const values = new Uint32Array(n);
    for (let i = 0; i < n; i++) values[i] = next();
    return splitRange(n, tasks).map(([s, e]) => histogramInput(values.subarray(s, e), 24));
  },
  reference(input) {
    if (input.byteLength < 8) throw new RangeError("histogram input shorter than its 8-byte header");
    const d = view(input);
    const n = d.getUint32(0, true);
    const shift = d.getUint32(4, true) & 31;
    if (input.byteLength < 8 + n * 4) throw new RangeError(`histogram input too short for n=${n}`);
    const values = u32(input, 8, n);
    const counts = new Uint32Array(HISTOGRAM_BINS);
    for (let i = 0; i < n; i++) counts[(values[i]! >>> shift) & 0xff]!++;
    return asBytes(counts);
  },
  check(input, output) {
    return compareExact(output, this.reference(input), "u32");
  },
  summarize(inputs, outputs) {
    const total = new Float64Array(HISTOGRAM_BINS);
    let n = 0;
    for (let t = 0; t < inputs.length; t++) {
      n += view(inputs[t]!).getUint32(0, true);
      const out = outputs[t];
      if (!out) continue;
      const c = u32(out, 0, HISTOGRAM_BINS);
      for (let b = 0; b < HISTOGRAM_BINS; b++) total[b] = total[b]! + c[b]!;
    }
    const expected = n / HISTOGRAM_BINS;
    let chi2 = 0;
    let min = Infinity;
    let max = -Infinity;
    for (const c of total) {
      chi2 += expected ? (c - expected) ** 2 / expected : 0;
      min = Math.min(min, c);
      max = Math.max(max, c);
    }
    return `histogram of ${fmtInt(n)} u32 values in ${inputs.length} tasks: bins ${fmtInt(min)}..${fmtInt(max)}, chi² ≈ ${chi2.toFixed(1)} (255 dof, ~255 if uniform)`;
  },
};
