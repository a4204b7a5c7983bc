// `distx kernel test`: a kernel against its reference over generated inputs, property-based in
// the way of Hypothesis/fast-check (no dependency: the generator and the shrinker are small).
// An input is built by the reference's makeInput(size, draw) from a sequence of recorded choices
// (u32s); a failing case is shrunk by trying smaller sizes and simpler choices (0 is always the
// simplest: the value 0), then reported at its smallest with the first element that differs.
import type { CompareSpec, KernelReference } from "./reference.js";
import type { LocalSandbox } from "./local-run.js";
import { mulberry32 } from "../reference/util.js";

/** What makeInput draws values from. Every draw takes one or two recorded choices. */
export interface Draw {
  u32(): number;
  /** A whole number in [lo, hi]. */
  int(lo: number, hi: number): number;
  byte(): number;
  /** A float32 value: mostly in ±1000, one draw in 8 an edge value (0, -0, ±1, ±max, smallest normal and subnormal, ±Infinity, NaN). */
  f32(): number;
  /** As f32, for float64. */
  f64(): number;
}

const EDGE_F32 = [0, -0, 1, -1, 0.5, 3.4028234663852886e38, -3.4028234663852886e38, 1.1754943508222875e-38, 1.401298464324817e-45, Infinity, -Infinity, NaN];
const EDGE_F64 = [0, -0, 1, -1, 0.5, Number.MAX_VALUE, -Number.MAX_VALUE, 2.2250738585072014e-308, Number.MIN_VALUE, Infinity, -Infinity, NaN];

class ChoiceDraw implements Draw {
  used = 0;
  constructor(
    private readonly choices: number[],
    private readonly fresh: (() => number) | undefined,
  ) {}
  u32(): number {
    if (this.used >= this.choices.length) this.choices.push(this.fresh ? this.fresh() : 0);
    return this.choices[this.used++]!;
  }
  int(lo: number, hi: number): number {
    return lo + (this.u32() % (hi - lo + 1));
  }
  byte(): number {
    return this.u32() & 0xff;
  }
  f32(): number {
    return Math.fround(this.float(EDGE_F32));
  }
  f64(): number {
    return this.float(EDGE_F64);
  }
  // Always two choices, so zeroing one never shifts the draws after it; all-zero choices give 0,
  // and a smaller value choice gives a value nearer 0 (what shrinking steps towards).
  private float(edges: number[]): number {
    const mode = this.u32();
    const c = this.u32();
    if (mode % 8 === 7) return edges[c % edges.length]!;
    const magnitude = ((c >>> 1) / 2 ** 31) * 1000;
    return c & 1 ? -magnitude : magnitude;
  }
}


export interface Mismatch {
  /** Element index (in compare.type units; bytes for "bytes"), or -1 for a length difference or a failed run. */
  index: number;
  what: string;
}

const WIDTH: Record<CompareSpec["type"], number> = { bytes: 1, u8: 1, i32: 4, u32: 4, f32: 4, f64: 8 };

function element(bytes: Uint8Array, type: CompareSpec["type"], i: number): number {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const o = i * WIDTH[type];
  switch (type) {
    case "i32":
      return v.getInt32(o, true);
    case "u32":
      return v.getUint32(o, true);
    case "f32":
      return v.getFloat32(o, true);
    case "f64":
      return v.getFloat64(o, true);
    default:
      return v.getUint8(o);
  }
}

/** The first element where `got` differs from `expected` beyond the tolerance, or undefined. */
export function firstMismatch(expected: Uint8Array, got: Uint8Array, c: CompareSpec): Mismatch | undefined {
  const w = WIDTH[c.type];
  if (expected.byteLength !== got.byteLength) {
    return { index: -1, what: `output is ${got.byteLength} bytes, expected ${expected.byteLength} (${expected.byteLength / w} ${c.type} elements)` };
  }
  const n = Math.floor(expected.byteLength / w);
  for (let i = 0; i < n; i++) {
    const e = element(expected, c.type, i);
    const g = element(got, c.type, i);
    if (Object.is(e, g) || (Number.isNaN(e) && Number.isNaN(g))) continue;
    const tol = c.absTol + c.relTol * Math.abs(e);
    if (Math.abs(e - g) <= tol) continue;
    const tolText = c.absTol || c.relTol ? `tolerance ${c.absTol} + ${c.relTol}·|expected| = ${tol}` : "exact";
    return { index: i, what: `output[${i}] (${c.type}): expected ${fmt(e)}, got ${fmt(g)} (${tolText})` };
  }
  for (let i = n * w; i < expected.byteLength; i++) {
    if (expected[i] !== got[i]) return { index: i, what: `trailing byte ${i}: expected ${expected[i]}, got ${got[i]}` };
  }
  return undefined;
}

const fmt = (x: number) => (Object.is(x, -0) ? "-0" : String(x));

export interface TestOptions {
  seed: number;
  /** Random cases per size (the first of each size draws only edge values is not guaranteed: draws decide). */
  runsPerSize: number;
  sizes: number[];
  /** Most kernel runs spent shrinking a failure. */
  shrinkBudget: number;
}

export const DEFAULT_SIZES = [0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 100, 255, 1000, 4096];

export interface TestCase {
  size: number;
  seed: number;
  choices: number[];
}

export type TestReport =
  | { ok: true; cases: number }
  | { ok: false; cases: number; failing: TestCase; input: Uint8Array; mismatch: Mismatch; shrinkRuns: number; original: { size: number } };

export async function testKernel(sandbox: LocalSandbox, ref: KernelReference, opts: TestOptions): Promise<TestReport> {
  /** Runs one case; a mismatch, or undefined when the kernel matches. The input comes back too. */
  const check = async (c: TestCase, fresh?: () => number): Promise<{ mismatch?: Mismatch; input: Uint8Array; used: number }> => {
    const draw = new ChoiceDraw(c.choices, fresh);
    const input = ref.makeInput(c.size, draw);
    let expected: Uint8Array;
    try {
      expected = ref.reference(input, c.seed);
    } catch (err) {
      throw new Error(`the reference threw on an input of size ${c.size} (seed ${c.seed}): ${(err as Error).message}`);
    }
    const r = await sandbox.run(input, c.seed);
    if (!r.ok) return { mismatch: { index: -1, what: `the kernel failed ${r.code}: ${r.message}` }, input, used: draw.used };
    const mismatch = firstMismatch(expected, new Uint8Array(r.output.buffer, r.output.byteOffset, r.output.byteLength), ref.compare);
    return { ...(mismatch ? { mismatch } : {}), input, used: draw.used };
  };

  const next = mulberry32(opts.seed);
  let cases = 0;
  for (let run = 0; run < opts.runsPerSize; run++) {
    for (const size of opts.sizes) {
      const c: TestCase = { size, seed: (next() % 1_000_000) + 1, choices: [] };
      const r = await check(c, next);
      cases++;
      if (!r.mismatch) continue;
      c.choices.length = r.used;
      return { ok: false, cases, original: { size }, ...(await shrink(c, r.mismatch, r.input, check, opts.shrinkBudget)) };
    }
  }
  return { ok: true, cases };
}

type Check = (c: TestCase) => Promise<{ mismatch?: Mismatch; input: Uint8Array; used: number }>;

/** Smaller sizes first, then each choice to 0, else halved; keeps any change that still fails, until none does or the budget is spent. */
async function shrink(failing: TestCase, mismatch: Mismatch, input: Uint8Array, check: Check, budget: number): Promise<{ failing: TestCase; mismatch: Mismatch; input: Uint8Array; shrinkRuns: number }> {
  let best = { failing, mismatch, input };
  let runs = 0;
  const attempt = async (c: TestCase): Promise<boolean> => {
    if (runs >= budget) return false;
    runs++;
    const r = await check({ ...c, choices: [...c.choices] });
    if (!r.mismatch) return false;
    best = { failing: { ...c, choices: c.choices.slice(0, r.used) }, mismatch: r.mismatch, input: r.input };
    return true;
  };
  let improved = true;
  while (improved && runs < budget) {
    improved = false;
    const cur = best.failing;
    for (const size of [0, 1, 2, cur.size >> 2, cur.size >> 1, cur.size - 1]) {
      if (size >= 0 && size < cur.size && (await attempt({ ...cur, size }))) {
        improved = true;
        break;
      }
    }
    if (improved) continue;
    for (let i = 0; i < cur.choices.length && runs < budget; i++) {
      const v = best.failing.choices[i]!;
      if (v === 0) continue;
      // Halved with bit 0 kept (a float draw's sign), or halved outright.
      for (const smaller of [0, (((v >>> 2) << 1) | (v & 1)) >>> 0, v >>> 1]) {
        if (smaller === v) continue;
        const choices = [...best.failing.choices];
        choices[i] = smaller;
        if (await attempt({ ...best.failing, choices })) {
          improved = true;
          break;
        }
      }
    }
  }
  return { ...best, shrinkRuns: runs };
}
