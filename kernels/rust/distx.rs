//! DistributeX kernel ABI "distx-abi-1" for Rust authors (kernels/README.md, "Rust kernels").
//! Include it in a `#![no_std]` cdylib with `#[path = "../../distx.rs"] mod distx;` (or copy it)
//! and export `distx_run(input: *mut u8, len: i32) -> i32`, reserving the output with
//! `distx::output(len)`. `distx kernel build <cargo project>` builds it with Debian's rustc for
//! wasm32-unknown-unknown, memory imported so the agent can cap it. A panic traps (TRAP, with
//! the file and line of the code that trapped).
#![allow(dead_code)]

use core::arch::wasm32;

extern "C" {
    static __heap_base: u8;
}

static mut HEAP_TOP: usize = 0;
static mut OUTPUT_PTR: usize = 0;

// ABI version 2: the job's shared inputs, by index (kernels/README.md, "Shared inputs").
// Imported only if a kernel calls shared_input.
#[link(wasm_import_module = "env")]
extern "C" {
    #[link_name = "shared_input_len"]
    fn host_shared_input_len(index: i32) -> i32;
    #[link_name = "shared_input"]
    fn host_shared_input(index: i32) -> *const u8;
}

/// The job's shared input `index` (copied into memory, 16-byte aligned, on the first call), or
/// None when the job has no such input.
pub fn shared_input(index: i32) -> Option<&'static [u8]> {
    let len = unsafe { host_shared_input_len(index) };
    if len < 0 {
        return None;
    }
    Some(unsafe { core::slice::from_raw_parts(host_shared_input(index), len as usize) })
}

/// 16-byte-aligned bump allocator over the imported memory: a fresh instance per task makes
/// freeing pointless. Traps when the memory cannot grow, as AssemblyScript's does.
pub fn alloc(len: usize) -> *mut u8 {
    unsafe {
        if HEAP_TOP == 0 {
            HEAP_TOP = &__heap_base as *const u8 as usize;
        }
        let at = (HEAP_TOP + 15) & !15;
        let end = at + if len < 16 { 16 } else { len };
        let have = wasm32::memory_size(0) * 65536;
        if end > have && wasm32::memory_grow(0, (end - have + 65535) / 65536) == usize::MAX {
            wasm32::unreachable();
        }
        HEAP_TOP = end;
        at as *mut u8
    }
}

/// Reserve `len` bytes of output; `distx_run` then returns `len`.
pub fn output(len: usize) -> *mut u8 {
    let p = alloc(len);
    unsafe { OUTPUT_PTR = p as usize };
    p
}

#[no_mangle]
pub extern "C" fn distx_abi_version() -> i32 {
    2
}

#[no_mangle]
pub extern "C" fn distx_alloc(len: i32) -> *mut u8 {
    alloc(if len < 0 { 0 } else { len as usize })
}

#[no_mangle]
pub extern "C" fn distx_output_ptr() -> *mut u8 {
    unsafe { OUTPUT_PTR as *mut u8 }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    wasm32::unreachable()
}

#[link(wasm_import_module = "env")]
extern "C" {
    #[link_name = "log"]
    fn distx_host_log(ptr: *const u8, len: i32);
}

/// Logs one line (env.log). The lines come back with the task's result (`distx result --logs`,
/// also when the task fails) and `distx kernel run` prints them; the agent keeps up to its
/// per-task cap (4 KiB, 100 lines by default) and says what it dropped. Imported only if called.
pub fn log(msg: &str) {
    unsafe { distx_host_log(msg.as_ptr(), msg.len() as i32) }
}
