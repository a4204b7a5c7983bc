// DistributeX kernel ABI "distx-abi-1" for AssemblyScript authors.
// Re-export the three ABI functions from your kernel and implement `distx_run`.
// See kernels/README.md for the full contract.

let outputPtr: usize = 0;

/** ABI marker the agent checks before it runs anything. */
export function distx_abi_version(): i32 {
  return 1;
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
