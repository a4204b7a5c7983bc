// The agent's calibration kernel: a fixed mix of SIMD multiply-adds and scalar integer work,
// timed at agent start so the scheduler knows each node's real speed, not only its core count.
// Input: u32 iterations. Output: f32 checksum (keeps the work from being optimised away).
// Operations counted per iteration: 8 x f32x4 (mul + add) = 64 flops + 4 integer ops = 68.
export { distx_abi_version, distx_alloc, distx_output_ptr } from "distributex/kernel";
import { output } from "distributex/kernel";

export function distx_run(input: usize, len: i32): i32 {
  if (len < 4) abort("calibration: input must hold a u32 iteration count");
  const iterations = load<u32>(input);
  let a0 = f32x4.splat(1.0), a1 = f32x4.splat(1.1), a2 = f32x4.splat(1.2), a3 = f32x4.splat(1.3);
  let a4 = f32x4.splat(1.4), a5 = f32x4.splat(1.5), a6 = f32x4.splat(1.6), a7 = f32x4.splat(1.7);
  const m = f32x4.splat(0.999999), c = f32x4.splat(0.000001);
  let h: u32 = 2166136261;
  for (let i: u32 = 0; i < iterations; i++) {
    a0 = f32x4.add(f32x4.mul(a0, m), c); a1 = f32x4.add(f32x4.mul(a1, m), c);
    a2 = f32x4.add(f32x4.mul(a2, m), c); a3 = f32x4.add(f32x4.mul(a3, m), c);
    a4 = f32x4.add(f32x4.mul(a4, m), c); a5 = f32x4.add(f32x4.mul(a5, m), c);
    a6 = f32x4.add(f32x4.mul(a6, m), c); a7 = f32x4.add(f32x4.mul(a7, m), c);
    h = (h ^ i) * 16777619; h = rotl<u32>(h, 5);
  }
  const s = f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7)));
  const out = output(4);
  store<f32>(out, f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 3) + <f32>(h & 1));
  return 4;
}
