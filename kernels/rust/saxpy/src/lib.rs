//! saxpy in Rust: y = a*x + y over f32 (same layout as kernels/assembly/examples/saxpy.ts).
//! Input: f32 a, u32 n, f32 x[n], f32 y[n] (little-endian, packed). Output: f32 y[n].
//! A plain loop over slices; LLVM vectorizes it to f32x4 (+simd128) and never fuses the
//! multiply-add, so each element rounds like the JS reference.
#![no_std]
#[path = "../../distx.rs"]
mod distx;

#[no_mangle]
pub extern "C" fn distx_run(input: *mut u8, len: i32) -> i32 {
    let bytes = unsafe { core::slice::from_raw_parts(input as *const u8, len.max(0) as usize) };
    if bytes.len() < 8 {
        core::arch::wasm32::unreachable();
    }
    let a = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let n = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    if (bytes.len() as u64) < 8 + n as u64 * 8 {
        core::arch::wasm32::unreachable();
    }
    // The input starts 16-byte aligned (distx_alloc), so x at +8 and y are 4-byte aligned.
    let x = unsafe { core::slice::from_raw_parts(input.add(8) as *const f32, n) };
    let y = unsafe { core::slice::from_raw_parts(input.add(8 + n * 4) as *const f32, n) };
    let out = unsafe { core::slice::from_raw_parts_mut(distx::output(n * 4) as *mut f32, n) };
    for ((o, &xi), &yi) in out.iter_mut().zip(x).zip(y) {
        *o = a * xi + yi;
    }
    (n * 4) as i32
}
