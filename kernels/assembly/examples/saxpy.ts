// saxpy: y = a*x + y over float32.
// Input:  f32 a, u32 n, f32 x[n], f32 y[n]   (little-endian, packed)
// Output: f32 y[n]
//
// A job is split into contiguous chunks of the vectors. Each element is one f32 multiply and
// one f32 add (no FMA), rounded like the JS reference Math.fround(Math.fround(a*x) + y).
// Method: f32x4, unrolled four vectors (16 floats) per loop so the loop overhead and V8's
// per-iteration interrupt check are amortised; memory-bound at any real size.
export { distx_abi_version, distx_alloc, distx_output_ptr } from "distributex/kernel";
import { output } from "distributex/kernel";

export function distx_run(input: usize, len: i32): i32 {
  if (len < 8) abort("saxpy: input shorter than its header says");
  const a = load<f32>(input);
  const n = <i32>load<u32>(input, 4);
  if (<u64>len < 8 + <u64>n * 8) abort("saxpy: input shorter than its header says");
  const x = input + 8;
  const y = x + (<usize>n << 2);
  const out = output(n * 4);
  const va = f32x4.splat(a);
  let px = x, py = y, po = out;
  const end16 = x + ((<usize>n & ~15) << 2);
  while (px < end16) {
    v128.store(po, f32x4.add(f32x4.mul(va, v128.load(px)), v128.load(py)));
    v128.store(po, f32x4.add(f32x4.mul(va, v128.load(px, 16)), v128.load(py, 16)), 16);
    v128.store(po, f32x4.add(f32x4.mul(va, v128.load(px, 32)), v128.load(py, 32)), 32);
    v128.store(po, f32x4.add(f32x4.mul(va, v128.load(px, 48)), v128.load(py, 48)), 48);
    px += 64;
    py += 64;
    po += 64;
  }
  for (let i = n & ~15; i < n; i++) {
    const off = <usize>i << 2;
    store<f32>(out + off, a * load<f32>(x + off) + load<f32>(y + off));
  }
  return n * 4;
}
