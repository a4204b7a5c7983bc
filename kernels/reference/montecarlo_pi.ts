// montecarlo_pi: hits inside the quarter circle. Layout: kernels/assembly/examples/montecarlo_pi.ts.
//   input  u64 seed, u32 samples, u32 0     output u64 hits
// size = total samples in the job (default 4,000,000), split evenly; task t gets the seed
// (jobSeed << 32) | t. PRNG: xorshift128+ seeded by splitmix64; this file reproduces it
// bit-for-bit with 32-bit halves, so hit counts match the kernel exactly.
import type { ExampleKernel } from "./types.js";
import { compareExact, fmtInt, positiveInt, splitRange, view } from "./util.js";

const M64 = (1n << 64n) - 1n;

function splitmix64(state: bigint): [next: bigint, out: bigint] {
  const s = (state + 0x9e3779b97f4a7c15n) & M64;
  let z = s;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
  return [s, z ^ (z >> 31n)];
}

export function montecarloInput(seed: bigint, samples: number): Uint8Array {
  const bytes = new Uint8Array(16);
  const d = view(bytes);
  d.setBigUint64(0, seed & M64, true);
  d.setUint32(8, samples, true);
  return bytes;
}

/** Counts hits for `samples` draws from xorshift128+ seeded via splitmix64(seed). */
export function countHits(seed: bigint, samples: number): number {
  const [sm1, w0] = splitmix64(seed & M64);
  const [, w1] = splitmix64(sm1);
  let s0h = Number(w0 >> 32n) >>> 0;
  let s0l = Number(w0 & 0xffffffffn) >>> 0;
  let s1h = Number(w1 >> 32n) >>> 0;
  let s1l = Number(w1 & 0xffffffffn) >>> 0;
  let hits = 0;
  for (let i = 0; i < samples; i++) {
    // r = s0 + s1 (64-bit, with carry)
    const lo = s0l + s1l;
    const rl = lo >>> 0;
    const rh = (s0h + s1h + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    // a = s0 ^ (s0 << 23); b = s1
    const ah = (s0h ^ ((s0h << 23) | (s0l >>> 9))) >>> 0;
    const al = (s0l ^ (s0l << 23)) >>> 0;
    const bh = s1h;
    const bl = s1l;
    s0h = bh;
    s0l = bl;
    // s1 = a ^ b ^ (a >> 18) ^ (b >> 5)
    s1h = (ah ^ bh ^ (ah >>> 18) ^ (bh >>> 5)) >>> 0;
    s1l = (al ^ bl ^ ((al >>> 18) | (ah << 14)) ^ ((bl >>> 5) | (bh << 27))) >>> 0;
    const x = rh >>> 8;
    const y = ((rh & 0xff) << 16) | (rl >>> 16);
    if (x * x + y * y < 281474976710656) hits++; // 2^48, exact in float64
  }
  return hits;
}

export const montecarloPi: ExampleKernel = {
  name: "montecarlo_pi",
  description: "Monte Carlo estimate of pi (xorshift128+ in the kernel, integer hit test); tasks get distinct seeds",
  sizeHelp: "total samples across the job (default 4,000,000), split evenly across tasks",
  defaultSize: 4_000_000,
  makeTasks({ tasks, size, seed = 1 }) {
    const samples = positiveInt(size, this.defaultSize, "size");
    return splitRange(samples, tasks).map(([s, e], t) => montecarloInput((BigInt(seed >>> 0) << 32n) | BigInt(t), e - s));
  },
  reference(input) {
    if (input.byteLength < 16) throw new RangeError("montecarlo_pi input shorter than 16 bytes");
    const d = view(input);
    const out = new Uint8Array(8);
    view(out).setBigUint64(0, BigInt(countHits(d.getBigUint64(0, true), d.getUint32(8, true))), true);
    return out;
  },
  check(input, output) {
    return compareExact(output, this.reference(input), "u64");
  },
  summarize(inputs, outputs) {
    let samples = 0;
    let hits = 0;
    for (let t = 0; t < inputs.length; t++) {
      samples += view(inputs[t]!).getUint32(8, true);
      const out = outputs[t];
      if (out && out.byteLength >= 8) hits += Number(view(out).getBigUint64(0, true));
    }
    const pi = samples ? (4 * hits) / samples : NaN;
    return `pi ≈ ${pi.toFixed(5)} from ${fmtInt(samples)} samples in ${inputs.length} tasks (error ${Math.abs(pi - Math.PI).toExponential(1)})`;
  },
};
