// histogram: 256-bin histogram of one byte of each u32 value (an integer reduction).
//
// Input (little-endian, packed):
//   u32 n, u32 shift (0..31), u32 values[n]
// Output:
//   u32 counts[256]   counts[b] = number of i with ((values[i] >>> shift) & 0xFF) == b
//
// A job is split into contiguous chunks of the values; the job's histogram is the
// element-wise sum of the task outputs (kernels/reference/histogram.ts summarize()).
// Method: four sub-histograms so consecutive increments to the same bin do not wait on each
// other's store; when shift is a multiple of 8 the bin byte is loaded directly (no shift/mask).
export { distx_abi_version, distx_alloc, distx_output_ptr } from "distributex/kernel";
import { output } from "distributex/kernel";

export function distx_run(input: usize, len: i32): i32 {
  if (len < 8) abort("histogram: input shorter than its 8-byte header");
  const n = <i32>load<u32>(input);
  const shift = load<u32>(input, 4) & 31;
  if (<u64>len < 8 + <u64>n * 4) abort("histogram: input shorter than n values");
  const values = input + 8;
  const sub = heap.alloc(4 * 256 * 4);
  memory.fill(sub, 0, 4 * 256 * 4);
  const h0 = sub, h1 = sub + 1024, h2 = sub + 2048, h3 = sub + 3072;
  const end = values + ((<usize>n & ~3) << 2);
  if ((shift & 7) == 0) {
    // The bin is one whole byte of each value (little-endian): load that byte directly.
    let q = values + (shift >> 3);
    const qend = end + (shift >> 3);
    while (q < qend) {
      const b0 = <usize>load<u8>(q) << 2;
      const b1 = <usize>load<u8>(q, 4) << 2;
      const b2 = <usize>load<u8>(q, 8) << 2;
      const b3 = <usize>load<u8>(q, 12) << 2;
      store<u32>(h0 + b0, load<u32>(h0 + b0) + 1);
      store<u32>(h1 + b1, load<u32>(h1 + b1) + 1);
      store<u32>(h2 + b2, load<u32>(h2 + b2) + 1);
      store<u32>(h3 + b3, load<u32>(h3 + b3) + 1);
      q += 16;
    }
  } else {
    let p = values;
    while (p < end) {
      const b0 = <usize>((load<u32>(p) >>> shift) & 0xFF) << 2;
      const b1 = <usize>((load<u32>(p, 4) >>> shift) & 0xFF) << 2;
      const b2 = <usize>((load<u32>(p, 8) >>> shift) & 0xFF) << 2;
      const b3 = <usize>((load<u32>(p, 12) >>> shift) & 0xFF) << 2;
      store<u32>(h0 + b0, load<u32>(h0 + b0) + 1);
      store<u32>(h1 + b1, load<u32>(h1 + b1) + 1);
      store<u32>(h2 + b2, load<u32>(h2 + b2) + 1);
      store<u32>(h3 + b3, load<u32>(h3 + b3) + 1);
      p += 16;
    }
  }
  for (let i = n & ~3; i < n; i++) {
    const b = <usize>((load<u32>(values + (<usize>i << 2)) >>> shift) & 0xFF) << 2;
    store<u32>(h0 + b, load<u32>(h0 + b) + 1);
  }
  const out = output(1024);
  for (let b = 0; b < 1024; b += 16) {
    const s = i32x4.add(i32x4.add(v128.load(h0 + b), v128.load(h1 + b)), i32x4.add(v128.load(h2 + b), v128.load(h3 + b)));
    v128.store(out + b, s);
  }
  return 1024;
}
