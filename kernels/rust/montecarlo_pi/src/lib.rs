//! montecarlo_pi in Rust: points of the unit square inside the quarter circle (same layout and
//! PRNG as kernels/assembly/examples/montecarlo_pi.ts). Input: u64 seed, u32 samples, u32 0.
//! Output: u64 hits. xorshift128+ whose two state words are the first two splitmix64 outputs of
//! `seed`; each sample takes one 64-bit output r: x = r >> 40, y = (r >> 16) & 0xFFFFFF, a hit
//! when x*x + y*y < 2^48. Wrapping integer arithmetic only, no host randomness: the count
//! depends on the input alone and matches the JS reference exactly.
#![no_std]
#[path = "../../distx.rs"]
mod distx;

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[no_mangle]
pub extern "C" fn distx_run(input: *mut u8, len: i32) -> i32 {
    let bytes = unsafe { core::slice::from_raw_parts(input as *const u8, len.max(0) as usize) };
    if bytes.len() < 16 {
        core::arch::wasm32::unreachable();
    }
    let mut sm = u64::from_le_bytes(bytes[0..8].try_into().unwrap());
    let samples = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
    let mut s0 = splitmix64(&mut sm);
    let mut s1 = splitmix64(&mut sm);
    let mut hits: u64 = 0;
    for _ in 0..samples {
        let mut a = s0;
        let b = s1;
        let r = a.wrapping_add(b);
        s0 = b;
        a ^= a << 23;
        s1 = a ^ b ^ (a >> 18) ^ (b >> 5);
        let (x, y) = (r >> 40, (r >> 16) & 0xFF_FFFF);
        hits += (x * x + y * y < 1 << 48) as u64;
    }
    let out = distx::output(8);
    unsafe { core::ptr::copy_nonoverlapping(hits.to_le_bytes().as_ptr(), out, 8) };
    8
}
