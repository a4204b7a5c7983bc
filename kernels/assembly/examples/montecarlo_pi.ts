// montecarlo_pi: counts random points of the unit square that fall inside the quarter circle.
//
// Input (little-endian, packed, 16 bytes):
//   u64 seed, u32 samples, u32 reserved (0)
// Output (8 bytes):
//   u64 hits
//
// PRNG: xorshift128+ (Vigna) whose two state words are the first two outputs of splitmix64
// started at `seed`. Each sample takes ONE 64-bit output r: x = r >> 40 (top 24 bits),
// y = (r >> 16) & 0xFFFFFF (next 24 bits); it is a hit when x*x + y*y < 2^48. All integer
// arithmetic, so the JS reference reproduces the count exactly. pi ~= 4 * hits / samples.
// A job gives every task a distinct seed (see kernels/reference/montecarlo_pi.ts).
// The kernel does not use Math.random / env.seed: the result depends only on the input.
export { distx_abi_version, distx_alloc, distx_output_ptr } from "distributex/kernel";
import { output } from "distributex/kernel";

export function distx_run(input: usize, len: i32): i32 {
  if (len < 16) abort("montecarlo_pi: input shorter than 16 bytes");
  let sm = load<u64>(input);
  const samples = load<u32>(input, 8);
  // splitmix64 -> two state words
  sm += 0x9E3779B97F4A7C15;
  let z = sm;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
  let s0 = z ^ (z >> 31);
  sm += 0x9E3779B97F4A7C15;
  z = sm;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
  let s1 = z ^ (z >> 31);
  let hits: u64 = 0;
  const limit: u64 = <u64>1 << 48;
  for (let i: u32 = 0; i < samples; i++) {
    // xorshift128+
    let a = s0;
    const b = s1;
    const r = a + b;
    s0 = b;
    a ^= a << 23;
    s1 = a ^ b ^ (a >> 18) ^ (b >> 5);
    const x = r >> 40;
    const y = (r >> 16) & 0xFFFFFF;
    hits += <u64>(x * x + y * y < limit);
  }
  const out = output(8);
  store<u64>(out, hits);
  return 8;
}
