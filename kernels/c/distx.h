/* DistributeX kernel ABI "distx-abi-1" for C authors (kernels/README.md, "C kernels").
 * Include it once in your kernel (it defines the three ABI functions) and implement
 *   int32_t distx_run(uint8_t *input, int32_t len);
 * reserving the output with distx_output(len) and returning len. Build with
 * `distx kernel build kernel.c` (Debian clang + lld, --target=wasm32, memory imported so the
 * agent can cap it, no libc). A trap (e.g. __builtin_trap()) fails the task as TRAP with the
 * file and line; distx_abort(msg) fails it with a message. */
#ifndef DISTX_H
#define DISTX_H
#include <stddef.h>
#include <stdint.h>

#define DISTX_EXPORT(name) __attribute__((export_name(#name), visibility("default")))

/* The host's imports: abort (AssemblyScript's signature: message, file, line, column as
 * AssemblyScript strings; 0 for "none") and log (bytes of UTF-8 text). */
__attribute__((import_module("env"), import_name("abort"))) void distx_host_abort(int32_t, int32_t, int32_t, int32_t);
/* ABI version 2: the job's shared inputs by index (kernels/README.md, "Shared inputs"). len is
 * -1 when the job has no input `index`; distx_shared_input(index) copies it into memory on the
 * first call (16-byte aligned) and traps when there is none. Imported only if a kernel calls them. */
__attribute__((import_module("env"), import_name("shared_input_len"))) int32_t distx_shared_input_len(int32_t index);
__attribute__((import_module("env"), import_name("shared_input"))) const void *distx_shared_input(int32_t index);

extern unsigned char __heap_base;
static uintptr_t distx_heap_top = (uintptr_t)&__heap_base;
static uintptr_t distx_out_ptr = 0;

/* 16-byte-aligned bump allocator over the imported memory: a fresh instance per task makes
 * freeing pointless. Traps (unreachable) when the memory cannot grow, as AssemblyScript's does. */
static inline void *distx_alloc_bytes(size_t len) {
  uintptr_t at = (distx_heap_top + 15) & ~(uintptr_t)15;
  uintptr_t end = at + (len < 16 ? 16 : len);
  size_t have = __builtin_wasm_memory_size(0) * 65536;
  if (end > have) {
    size_t pages = (end - have + 65535) / 65536;
    if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) __builtin_trap();
  }
  distx_heap_top = end;
  return (void *)at;
}

DISTX_EXPORT(distx_abi_version) int32_t distx_abi_version(void) { return 2; }
DISTX_EXPORT(distx_alloc) void *distx_alloc(int32_t len) { return distx_alloc_bytes(len < 0 ? 0 : (size_t)len); }
DISTX_EXPORT(distx_output_ptr) void *distx_output_ptr(void) { return (void *)distx_out_ptr; }

/* Reserve `len` bytes of output; distx_run then returns len. */
static inline void *distx_output(int32_t len) {
  void *p = distx_alloc_bytes(len < 0 ? 0 : (size_t)len);
  distx_out_ptr = (uintptr_t)p;
  return p;
}

/* Fails the task (as TRAP) at this point. */
#define distx_abort() __builtin_trap()

/* Logs one line: `len` bytes of UTF-8 at `msg` (env.log). The lines come back with the task's
 * result (`distx result --logs`, also when the task fails) and `distx kernel run` prints them; the
 * agent keeps up to its per-task cap (4 KiB, 100 lines by default) and says what it dropped.
 * Bytes outside the memory trap. Imported only if the kernel calls it. */
__attribute__((import_module("env"), import_name("log"))) void distx_log(const char *msg, int32_t len);

/* Logs a NUL-terminated string (no libc: counts its own length). */
static inline void distx_log_str(const char *s) {
  int32_t n = 0;
  while (s[n]) n++;
  distx_log(s, n);
}

#endif
