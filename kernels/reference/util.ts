// Small helpers shared by the example kernels' JS side. Dependency-free on purpose.

/** mulberry32: a tiny deterministic 32-bit PRNG (bench/kernels/c/common.h has the same one in C). */
export function mulberry32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Fills `out` with float32 values uniform in [-1, 1): fround(u / 2^32 * 2 - 1). */
export function fillUniform(out: Float32Array, seed: number): Float32Array {
  const next = mulberry32(seed);
  for (let i = 0; i < out.length; i++) out[i] = (next() / 4294967296) * 2 - 1;
  return out;
}

/** Splits `total` items into `parts` contiguous ranges whose sizes differ by at most one. */
export function splitRange(total: number, parts: number): Array<[start: number, end: number]> {
  if (!Number.isInteger(parts) || parts < 1) throw new RangeError(`tasks must be a positive integer, got ${parts}`);
  const p = parts;
  const base = Math.floor(total / p);
  const extra = total % p;
  const ranges: Array<[number, number]> = [];
  let start = 0;
  for (let i = 0; i < p; i++) {
    const len = base + (i < extra ? 1 : 0);
    ranges.push([start, start + len]);
    start += len;
  }
  return ranges;
}

export function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A Float32Array over `bytes` (copying only if the bytes are not 4-byte aligned). */
export function f32(bytes: Uint8Array, byteOffset: number, length: number): Float32Array {
  const at = bytes.byteOffset + byteOffset;
  if (at % 4 === 0) return new Float32Array(bytes.buffer, at, length);
  return new Float32Array(bytes.slice(byteOffset, byteOffset + length * 4).buffer);
}

export function u32(bytes: Uint8Array, byteOffset: number, length: number): Uint32Array {
  const at = bytes.byteOffset + byteOffset;
  if (at % 4 === 0) return new Uint32Array(bytes.buffer, at, length);
  return new Uint32Array(bytes.slice(byteOffset, byteOffset + length * 4).buffer);
}

export function asBytes(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export function fmtInt(n: number | bigint): string {
  return n.toLocaleString("en-US");
}

export function positiveInt(value: number | undefined, fallback: number, what: string): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${what} must be a positive integer, got ${value}`);
  return v;
}

/** Compares float32 arrays element-wise with a per-element tolerance. */
export function compareFloats(
  got: Float32Array,
  want: Float32Array,
  tolerance: (i: number) => number,
): { ok: boolean; detail: string } {
  if (got.length !== want.length) {
    return { ok: false, detail: `output has ${got.length} floats, expected ${want.length}` };
  }
  let worst = 0;
  let worstAt = -1;
  let bad = 0;
  let firstBad = -1;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    const err = Math.abs(g - w);
    const tol = tolerance(i);
    if (!(err <= tol)) {
      bad++;
      if (firstBad < 0) firstBad = i;
    }
    const rel = err / (tol || 1);
    if (rel > worst || Number.isNaN(err)) {
      worst = Number.isNaN(err) ? Infinity : rel;
      worstAt = i;
    }
  }
  if (bad) {
    const i = firstBad;
    return {
      ok: false,
      detail: `${fmtInt(bad)} of ${fmtInt(want.length)} floats out of tolerance; first at [${i}]: got ${got[i]}, expected ${want[i]} (±${tolerance(i).toExponential(2)})`,
    };
  }
  return {
    ok: true,
    detail: `${fmtInt(want.length)} floats within tolerance (worst ${(worst * 100).toFixed(1)}% of its bound${worstAt >= 0 ? ` at [${worstAt}]` : ""})`,
  };
}

export function compareExact(got: Uint8Array, want: Uint8Array, unit: "u32" | "u64" | "bytes" = "bytes"): { ok: boolean; detail: string } {
  if (got.byteLength !== want.byteLength) {
    return { ok: false, detail: `output has ${got.byteLength} bytes, expected ${want.byteLength}` };
  }
  for (let i = 0; i < want.byteLength; i++) {
    if (got[i] !== want[i]) {
      const size = unit === "u32" ? 4 : unit === "u64" ? 8 : 1;
      const at = Math.floor(i / size) * size;
      const dg = view(got);
      const dw = view(want);
      const read = (d: DataView) =>
        size === 4 ? d.getUint32(at, true) : size === 8 ? d.getBigUint64(at, true) : d.getUint8(at);
      return { ok: false, detail: `first difference at ${unit} [${at / size}]: got ${read(dg)}, expected ${read(dw)}` };
    }
  }
  return { ok: true, detail: `${fmtInt(want.byteLength)} bytes identical` };
}

export const F32_EPS = 2 ** -23;
