// The DistributeX kernel SDK for AssemblyScript ("distx-abi-1"): `import { output } from "distributex/kernel"`.
// Re-export the three ABI functions from your kernel and implement `distx_run`. AssemblyScript
// finds this file as node_modules/distributex/kernel/index.ts; kernels/README.md is the contract.

let outputPtr: usize = 0;

/**
 * ABI marker the agent checks before it runs anything. 2 = version 1 plus the shared-input
 * imports below; agents run 1 and 2 (a kernel built against an older distx.ts answers 1).
 */
export function distx_abi_version(): i32 {
  return 2;
}

// The job's shared inputs (SubmitJobRequest.shared_inputs), by index in the order the job
// declared them. The module imports these only if the kernel calls them.
// @ts-ignore: decorator
@external("env", "shared_input_len")
declare function host_shared_input_len(index: i32): i32;
// @ts-ignore: decorator
@external("env", "shared_input")
declare function host_shared_input(index: i32): usize;

/** Bytes of shared input `index`, or -1 when the job has no such input. */
export function shared_input_len(index: i32): i32 {
  return host_shared_input_len(index);
}

/**
 * Where shared input `index` starts in memory (16-byte aligned; the agent copies it in on the
 * first call of a task and answers the same pointer after). Treat it as read-only. Traps when
 * the job has no such input: check shared_input_len first when it is optional.
 */
export function shared_input(index: i32): usize {
  return host_shared_input(index);
}

/** The agent calls this to reserve room for a task's input bytes, then copies them in. */
export function distx_alloc(len: i32): usize {
  // 16-byte alignment keeps v128 loads of typed inputs aligned.
  return heap.alloc(<usize>max(len, 16)) ;
}

/** Where the output reserved by `output()` starts. */
export function distx_output_ptr(): usize {
  return outputPtr;
}

/** Kernels call this to reserve `len` bytes of output; `distx_run` then returns `len`. */
export function output(len: i32): usize {
  outputPtr = heap.alloc(<usize>max(len, 16));
  return outputPtr;
}

// env.log: one line of text per call, returned with the task's result (`distx result --logs`)
// and printed by `distx kernel run`. The agent keeps up to its cap per task (4 KiB and 100 lines
// by default) and says what it dropped; control characters are escaped. The module imports
// env.log only if the kernel calls log, so a kernel that never logs runs on any agent.
// @ts-ignore: decorator
@external("env", "log")
declare function host_log(ptr: usize, len: i32): void;

/** Logs one line (encoded as UTF-8). Costs an allocation for the encoding: keep it out of hot loops. */
export function log(message: string): void {
  const bytes = String.UTF8.encode(message);
  host_log(changetype<usize>(bytes), bytes.byteLength);
}

/** Logs `len` bytes of UTF-8 at `ptr` as one line (no encoding; invalid bytes are shown as U+FFFD). */
export function log_bytes(ptr: usize, len: i32): void {
  host_log(ptr, len);
}
