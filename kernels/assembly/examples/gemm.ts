// gemm: C = A · B over float32, row-major, blocked with a 4x8 SIMD register micro-kernel.
//
// Input (little-endian, packed, 16-byte header so A and B stay 16-byte aligned):
//   u32 m, u32 n, u32 k, u32 flags
//   f32 A[m*k]   row-major, m rows of k
//   f32 B[k*n]   row-major, k rows of n; absent when flags bit 0 (B_SHARED) is set: B is then
//                the job's shared input 0 (every task reads the same B, fetched once per agent)
// Output:
//   f32 C[m*n]   row-major
//
// A job is split by row blocks: every task carries a block of rows of A and the whole of B (or
// B once, as a shared input), and its output is the same block of rows of C (see kernels/README.md).
//
// Method (GotoBLAS-style): B is packed once into panels of 8 columns ([panel][kk][8], zero
// padded), A is packed per (MC x KC) block into slivers of 4 rows ([sliver][kk][4]); the
// micro-kernel keeps a 4x8 tile of C in eight f32x4 accumulators and streams one KC-long
// sliver of A (broadcast loads) against one panel of B (two v128 loads per kk).
// Without FMA in WASM SIMD each step is a separate f32x4.mul and f32x4.add, so results are
// rounded like a plain float32 loop, but the summation order differs from a naive loop:
// compare with a tolerance.
export { distx_abi_version, distx_alloc, distx_output_ptr } from "distributex/kernel";
import { output, shared_input, shared_input_len } from "distributex/kernel";

// @ts-ignore: decorator
@inline const B_SHARED: u32 = 1;

// @ts-ignore: decorator
@inline const MR: i32 = 4;
// @ts-ignore: decorator
@inline const NR: i32 = 8;
// @ts-ignore: decorator
@inline const MC: i32 = 64;
// @ts-ignore: decorator
@inline const KC: i32 = 256;

export function distx_run(input: usize, len: i32): i32 {
  if (len < 16) abort("gemm: input shorter than its 16-byte header");
  const m = <i32>load<u32>(input);
  const n = <i32>load<u32>(input, 4);
  const k = <i32>load<u32>(input, 8);
  const bShared = (load<u32>(input, 12) & B_SHARED) != 0;
  const need = 16 + (<u64>m * <u64>k + (bShared ? 0 : <u64>k * <u64>n)) * 4;
  if (<u64>len < need) abort("gemm: input shorter than its m*k (+ k*n) floats");
  const A = input + 16;
  let B = A + ((<usize>m * <usize>k) << 2);
  if (bShared) {
    const bLen = shared_input_len(0);
    if (bLen < 0 || <u64>bLen < <u64>k * <u64>n * 4) abort("gemm: flags say B is shared input 0, but the job has no shared input 0 of k*n floats");
    B = shared_input(0);
  }
  const outBytes = m * n * 4;
  const C = output(outBytes);
  memory.fill(C, 0, <usize>outBytes);
  if (m == 0 || n == 0 || k == 0) return outBytes;

  // Pack B into panels of NR columns: Bp[jp][kk][NR], zero padded past n.
  const panels = (n + NR - 1) / NR;
  const Bp = heap.alloc(<usize>panels * <usize>k * NR * 4);
  for (let jp = 0; jp < panels; jp++) {
    const col0 = jp * NR;
    const dst = Bp + ((<usize>jp * <usize>k * NR) << 2);
    if (col0 + NR <= n) {
      for (let kk = 0; kk < k; kk++) {
        const src = B + ((<usize>kk * <usize>n + <usize>col0) << 2);
        const d = dst + (<usize>kk << 5);
        v128.store(d, v128.load(src));
        v128.store(d, v128.load(src, 16), 16);
      }
    } else {
      for (let kk = 0; kk < k; kk++) {
        const d = dst + (<usize>kk << 5);
        for (let j = 0; j < NR; j++) {
          const col = col0 + j;
          store<f32>(d + (<usize>j << 2), col < n ? load<f32>(B + ((<usize>kk * <usize>n + <usize>col) << 2)) : 0);
        }
      }
    }
  }

  const Ap = heap.alloc(<usize>MC * KC * 4);
  const edge = heap.alloc(MR * NR * 4);

  for (let pc = 0; pc < k; pc += KC) {
    const kc = min(KC, k - pc);
    for (let ic = 0; ic < m; ic += MC) {
      const mc = min(MC, m - ic);
      const slivers = (mc + MR - 1) / MR;
      // Pack A[ic:ic+mc, pc:pc+kc] into slivers Ap[ir][kk][MR], zero padded past m.
      for (let ir = 0; ir < slivers; ir++) {
        const dst = Ap + ((<usize>ir * <usize>kc * MR) << 2);
        for (let r = 0; r < MR; r++) {
          const row = ic + ir * MR + r;
          if (row < m) {
            const src = A + ((<usize>row * <usize>k + <usize>pc) << 2);
            for (let kk = 0; kk < kc; kk++) {
              store<f32>(dst + ((<usize>(kk * MR + r)) << 2), load<f32>(src + (<usize>kk << 2)));
            }
          } else {
            for (let kk = 0; kk < kc; kk++) store<f32>(dst + ((<usize>(kk * MR + r)) << 2), 0);
          }
        }
      }
      for (let jp = 0; jp < panels; jp++) {
        const bp = Bp + ((<usize>jp * <usize>k * NR + <usize>pc * NR) << 2);
        const cols = min(NR, n - jp * NR);
        for (let ir = 0; ir < slivers; ir++) {
          const row0 = ic + ir * MR;
          const rows = min(MR, m - row0);
          micro(Ap + ((<usize>ir * <usize>kc * MR) << 2), bp, kc,
            C + ((<usize>row0 * <usize>n + <usize>(jp * NR)) << 2), n, rows, cols, edge);
        }
      }
    }
  }
  return outBytes;
}

// @ts-ignore: decorator
@inline
function micro(a: usize, b: usize, kc: i32, c: usize, ldc: i32, rows: i32, cols: i32, edge: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  const aEnd = a + (<usize>kc << 4);
  while (a < aEnd) {
    const b0 = v128.load(b);
    const b1 = v128.load(b, 16);
    let av = v128.load32_splat(a);
    c00 = f32x4.add(c00, f32x4.mul(av, b0));
    c01 = f32x4.add(c01, f32x4.mul(av, b1));
    av = v128.load32_splat(a, 4);
    c10 = f32x4.add(c10, f32x4.mul(av, b0));
    c11 = f32x4.add(c11, f32x4.mul(av, b1));
    av = v128.load32_splat(a, 8);
    c20 = f32x4.add(c20, f32x4.mul(av, b0));
    c21 = f32x4.add(c21, f32x4.mul(av, b1));
    av = v128.load32_splat(a, 12);
    c30 = f32x4.add(c30, f32x4.mul(av, b0));
    c31 = f32x4.add(c31, f32x4.mul(av, b1));
    a += 16;
    b += 32;
  }
  const ld = <usize>ldc << 2;
  if (rows == MR && cols == NR) {
    let p = c;
    v128.store(p, f32x4.add(v128.load(p), c00));
    v128.store(p, f32x4.add(v128.load(p, 16), c01), 16);
    p += ld;
    v128.store(p, f32x4.add(v128.load(p), c10));
    v128.store(p, f32x4.add(v128.load(p, 16), c11), 16);
    p += ld;
    v128.store(p, f32x4.add(v128.load(p), c20));
    v128.store(p, f32x4.add(v128.load(p, 16), c21), 16);
    p += ld;
    v128.store(p, f32x4.add(v128.load(p), c30));
    v128.store(p, f32x4.add(v128.load(p, 16), c31), 16);
  } else {
    v128.store(edge, c00); v128.store(edge, c01, 16);
    v128.store(edge, c10, 32); v128.store(edge, c11, 48);
    v128.store(edge, c20, 64); v128.store(edge, c21, 80);
    v128.store(edge, c30, 96); v128.store(edge, c31, 112);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < cols; j++) {
        const p = c + <usize>r * ld + (<usize>j << 2);
        store<f32>(p, load<f32>(p) + load<f32>(edge + ((<usize>(r * NR + j)) << 2)));
      }
    }
  }
}
