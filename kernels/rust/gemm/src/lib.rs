//! gemm in Rust: C = A·B over f32, row-major (same layout and method as
//! kernels/assembly/examples/gemm.ts). Input: u32 m, u32 n, u32 k, u32 flags, f32 A[m*k],
//! f32 B[k*n]; with flags bit 0 (B_SHARED) B is not in the input but the job's shared input 0.
//! Output: f32 C[m*n].
//! GotoBLAS-style like the AssemblyScript version, with the same blocking (B in 8-column panels,
//! A in 4-row slivers per 64x256 block, a 4x8 tile of C in eight f32x4 accumulators), so the
//! additions happen in the same order and C is bit-identical to the AssemblyScript kernel's;
//! separate f32x4 mul and add (no FMA in WASM SIMD; rustc never fuses the scalar edges).
#![no_std]
#[path = "../../distx.rs"]
mod distx;

use core::arch::wasm32::*;

const B_SHARED: u32 = 1;
const MR: usize = 4;
const NR: usize = 8;
const MC: usize = 64;
const KC: usize = 256;

/// c[rows x cols] (row stride ldc) += a-sliver (kc x MR) · b-panel (kc x NR).
#[inline(always)]
unsafe fn micro(mut a: *const f32, mut b: *const f32, kc: usize, c: *mut f32, ldc: usize, rows: usize, cols: usize, edge: *mut f32) {
    let z = f32x4_splat(0.0);
    let (mut c00, mut c01, mut c10, mut c11, mut c20, mut c21, mut c30, mut c31) = (z, z, z, z, z, z, z, z);
    let end = a.add(kc * MR);
    while a < end {
        let b0 = v128_load(b as *const v128);
        let b1 = v128_load(b.add(4) as *const v128);
        let mut av = v128_load32_splat(a as *const u32);
        c00 = f32x4_add(c00, f32x4_mul(av, b0));
        c01 = f32x4_add(c01, f32x4_mul(av, b1));
        av = v128_load32_splat(a.add(1) as *const u32);
        c10 = f32x4_add(c10, f32x4_mul(av, b0));
        c11 = f32x4_add(c11, f32x4_mul(av, b1));
        av = v128_load32_splat(a.add(2) as *const u32);
        c20 = f32x4_add(c20, f32x4_mul(av, b0));
        c21 = f32x4_add(c21, f32x4_mul(av, b1));
        av = v128_load32_splat(a.add(3) as *const u32);
        c30 = f32x4_add(c30, f32x4_mul(av, b0));
        c31 = f32x4_add(c31, f32x4_mul(av, b1));
        a = a.add(MR);
        b = b.add(NR);
    }
    let acc = [c00, c01, c10, c11, c20, c21, c30, c31];
    if rows == MR && cols == NR {
        for r in 0..MR {
            let p = c.add(r * ldc);
            v128_store(p as *mut v128, f32x4_add(v128_load(p as *const v128), acc[2 * r]));
            v128_store(p.add(4) as *mut v128, f32x4_add(v128_load(p.add(4) as *const v128), acc[2 * r + 1]));
        }
    } else {
        for (i, v) in acc.iter().enumerate() {
            v128_store(edge.add(4 * i) as *mut v128, *v);
        }
        for r in 0..rows {
            for j in 0..cols {
                *c.add(r * ldc + j) += *edge.add(r * NR + j);
            }
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

#[no_mangle]
pub extern "C" fn distx_run(input: *mut u8, len: i32) -> i32 {
    let bytes = unsafe { core::slice::from_raw_parts(input as *const u8, len.max(0) as usize) };
    if bytes.len() < 16 {
        unreachable();
    }
    let (m, n, k) = (u32_at(bytes, 0) as usize, u32_at(bytes, 4) as usize, u32_at(bytes, 8) as usize);
    let shared = u32_at(bytes, 12) & B_SHARED != 0;
    let (mk, kn) = (m as u64 * k as u64, k as u64 * n as u64);
    if (bytes.len() as u64) < 16 + (mk + if shared { 0 } else { kn }) * 4 {
        unreachable();
    }
    // The input starts 16-byte aligned (distx::alloc) and the header is 16 bytes.
    let a_ptr = unsafe { input.add(16) } as *const f32;
    let b_ptr = if shared {
        match distx::shared_input(0) {
            Some(b) if b.len() as u64 >= kn * 4 => b.as_ptr() as *const f32,
            _ => unreachable(),
        }
    } else {
        unsafe { a_ptr.add(m * k) }
    };
    let out_bytes = m as u64 * n as u64 * 4;
    if out_bytes > i32::MAX as u64 {
        unreachable();
    }
    let c_ptr = distx::output(out_bytes as usize) as *mut f32;
    unsafe { core::ptr::write_bytes(c_ptr, 0, m * n) };
    if m == 0 || n == 0 || k == 0 {
        return out_bytes as i32;
    }
    unsafe {
        // Pack B into panels of NR columns: bp[jp][kk][NR], zero padded past n.
        let panels = (n + NR - 1) / NR;
        let bp = distx::alloc(panels * k * NR * 4) as *mut f32;
        for jp in 0..panels {
            let col0 = jp * NR;
            for kk in 0..k {
                let src = b_ptr.add(kk * n + col0);
                let d = bp.add((jp * k + kk) * NR);
                if col0 + NR <= n {
                    v128_store(d as *mut v128, v128_load(src as *const v128));
                    v128_store(d.add(4) as *mut v128, v128_load(src.add(4) as *const v128));
                } else {
                    for j in 0..NR {
                        *d.add(j) = if j < n - col0 { *src.add(j) } else { 0.0 };
                    }
                }
            }
        }
        let ap = distx::alloc(MC * KC * 4) as *mut f32;
        let edge = distx::alloc(MR * NR * 4) as *mut f32;
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            for ic in (0..m).step_by(MC) {
                let slivers = (MC.min(m - ic) + MR - 1) / MR;
                // Pack A[ic..ic+mc, pc..pc+kc] into slivers ap[ir][kk][MR], zero padded past m.
                for ir in 0..slivers {
                    let dst = ap.add(ir * kc * MR);
                    for r in 0..MR {
                        let row = ic + ir * MR + r;
                        if row < m {
                            let src = a_ptr.add(row * k + pc);
                            for kk in 0..kc {
                                *dst.add(kk * MR + r) = *src.add(kk);
                            }
                        } else {
                            for kk in 0..kc {
                                *dst.add(kk * MR + r) = 0.0;
                            }
                        }
                    }
                }
                for jp in 0..panels {
                    let b_panel = bp.add((jp * k + pc) * NR);
                    let cols = NR.min(n - jp * NR);
                    for ir in 0..slivers {
                        let row0 = ic + ir * MR;
                        micro(ap.add(ir * kc * MR), b_panel, kc, c_ptr.add(row0 * n + jp * NR), n, MR.min(m - row0), cols, edge);
                    }
                }
            }
        }
    }
    out_bytes as i32
}
