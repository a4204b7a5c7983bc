// Messages between the agent's main thread and its kernel worker threads.
import type { KernelFailureCode } from "../wasm/run-kernel.js";

export interface RunRequest {
  type: "run";
  id: number;
  kernelId: string;
  /** Sent only the first time this worker sees the kernel; workers keep compiled modules by id. */
  module?: WebAssembly.Module;
  input: ArrayBuffer;
  inputOffset: number;
  inputLength: number;
  memoryLimitBytes: number;
  seed: number;
}

export type RunResponse =
  | { type: "done"; id: number; output: ArrayBuffer; runMs: number }
  | { type: "failed"; id: number; code: KernelFailureCode; message: string; runMs: number };

/** What the pool posts: one request, or several for one worker at once (run in order, answered one by one). */
export type ToWorker = RunRequest | { type: "batch"; requests: RunRequest[] };
