//! histogram in Rust: 256 bins of one byte of each u32 (same layout as
//! kernels/assembly/examples/histogram.ts). Input: u32 n, u32 shift, u32 values[n].
//! Output: u32 counts[256]. Four sub-histograms so consecutive increments of one bin do not
//! wait on each other's store, as the AssemblyScript version does.
#![no_std]
#[path = "../../distx.rs"]
mod distx;

#[no_mangle]
pub extern "C" fn distx_run(input: *mut u8, len: i32) -> i32 {
    let bytes = unsafe { core::slice::from_raw_parts(input as *const u8, len.max(0) as usize) };
    if bytes.len() < 8 {
        core::arch::wasm32::unreachable();
    }
    let n = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let shift = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) & 31;
    if (bytes.len() as u64) < 8 + n as u64 * 4 {
        core::arch::wasm32::unreachable();
    }
    let values = unsafe { core::slice::from_raw_parts(input.add(8) as *const u32, n) };
    let mut h = [[0u32; 256]; 4];
    let mut chunks = values.chunks_exact(4);
    for c in &mut chunks {
        h[0][((c[0] >> shift) & 0xff) as usize] += 1;
        h[1][((c[1] >> shift) & 0xff) as usize] += 1;
        h[2][((c[2] >> shift) & 0xff) as usize] += 1;
        h[3][((c[3] >> shift) & 0xff) as usize] += 1;
    }
    for &v in chunks.remainder() {
        h[0][((v >> shift) & 0xff) as usize] += 1;
    }
    let out = unsafe { core::slice::from_raw_parts_mut(distx::output(1024) as *mut u32, 256) };
    for b in 0..256 {
        out[b] = h[0][b].wrapping_add(h[1][b]).wrapping_add(h[2][b]).wrapping_add(h[3][b]);
    }
    1024
}
