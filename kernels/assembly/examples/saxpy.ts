// saxpy: y = a*x + y over float32.
// Input:  f32 a, u32 n, f32 x[n], f32 y[n]   (little-endian, packed)
// Output: f32 y[n]
export { distx_abi_version, distx_alloc, distx_output_ptr } from "../distx";
import { output } from "../distx";

export function distx_run(input: usize, len: i32): i32 {
  const a = load<f32>(input);
  const n = <i32>load<u32>(input, 4);
  if (len < 8 + n * 8) abort("saxpy: input shorter than its header says");
  const x = input + 8;
  const y = x + (<usize>n << 2);
  const out = output(n * 4);
  const va = f32x4.splat(a);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const off = <usize>i << 2;
    v128.store(out + off, f32x4.add(f32x4.mul(va, v128.load(x + off)), v128.load(y + off)));
  }
  for (; i < n; i++) {
    const off = <usize>i << 2;
    store<f32>(out + off, a * load<f32>(x + off) + load<f32>(y + off));
  }
  return n * 4;
}
