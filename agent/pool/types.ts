// The worker pool's public shapes and its one error type, in a module of their own: the GPU
// side, the kernel-module cache and the scheduler link use TaskFailure too, without the pool.
import type { MemoryPoolOptions } from "../wasm/memory-pool.js";
import type { OutputPoolOptions } from "../wasm/output-pool.js";
import type { KernelFailureCode } from "../wasm/run-kernel.js";

export type TaskFailureCode = KernelFailureCode | "TIMEOUT" | "CANCELLED" | "WORKER_CRASHED" | "SHUTDOWN" | "KERNEL_FETCH_FAILED" | "OUTPUT_TOO_LARGE" | "INTERNAL" | "OUTPUT_UNSTORED";

/** A task that did not succeed, classified where that happened (see common/task-errors.ts). */
export class TaskFailure extends Error {
  override readonly name = "TaskFailure";
  constructor(
    readonly code: TaskFailureCode,
    message: string,
    /** What the kernel logged before it failed (a trap after logging is when its author needs them most). */
    readonly logs?: string[],
  ) {
    super(message);
  }
}

export const shutdownFailure = (): TaskFailure => new TaskFailure("SHUTDOWN", "the agent is shutting down");

export interface PoolTask {
  kernelId: string;
  module: WebAssembly.Module;
  input: Uint8Array;
  /** The job's shared inputs, in order; views over SharedArrayBuffers, so workers read them without a copy. */
  shared?: Uint8Array[];
  timeoutMs: number;
  memoryLimitBytes: number;
  seed?: number;
  /** The per-task cap of the kernel's log (env.log); without it its lines are dropped. */
  log?: { maxBytes: number; maxLines: number };
  /** Called when a worker picks the task up (after `waitMs` in the queue). */
  onStart?: (waitMs: number) => void;
}

export interface PoolResult {
  output: Buffer;
  runMs: number;
  waitMs: number;
  /**
   * WebAssembly tasks: the linear memory the task needed: the size it had grown to when it ended
   * if it grew, else the size it asked for (a reused memory may have been handed out bigger).
   */
  memoryBytes?: number;
  /** The kernel's log lines (sanitised, capped), when it logged. */
  logs?: string[];
  /**
   * Present when the output's buffer is recycled (WorkerPoolOptions.outputPool): call it once
   * nothing reads `output` any more, nor anything it was handed to (a message not yet encoded,
   * an upload not yet done). From then on its bytes belong to a later task. Calling it is
   * optional (an output never given back is collected as usual); calling it twice is harmless.
   */
  release?: () => void;
}

/** A task handed to a pool (worker threads, or GPU executors): its result, and a way to cancel it. */
export interface TaskHandle<R> {
  readonly promise: Promise<R>;
  cancel(reason?: string): void;
}

export type PoolHandle = TaskHandle<PoolResult>;

export interface WorkerPoolOptions {
  size: number;
  /** JS heap cap per worker; WebAssembly memory is capped separately by each instance's maximum. */
  maxOldGenerationSizeMb?: number;
  /** Testing aid: each run takes 1/speedFactor as long (the worker stays busy for the extra time). Default 1. */
  speedFactor?: number;
  /**
   * Most tasks one worker may have in flight (the running one included) when they are tiny.
   * 1 turns pipelining off: one task per worker, the next sent when its reply arrives. Default 64.
   */
  maxPipelineDepth?: number;
  /**
   * Longest a worker holds a finished task's reply so that it goes back with the next ones
   * (default 1 ms); it always answers once the tasks of one message are done.
   */
  replyHoldMs?: number;
  /**
   * Bounds of each worker's pool of reused linear memories (agent/wasm/memory-pool.ts): most
   * memories, most bytes in all, biggest one kept. Defaults 8, 256 MiB, 128 MiB per worker.
   */
  memoryPool?: MemoryPoolOptions;
  /**
   * Bounds of the pool's recycled output buffers (agent/wasm/output-pool.ts, on the main
   * thread): outputs given back with PoolResult.release go, transferred with a later task of
   * their kernel, to the worker that writes that task's output into one. maxTotalBytes 0 (or
   * maxCount 0) turns recycling off. Default: off.
   */
  outputPool?: OutputPoolOptions;
}

export interface PoolStats {
  size: number;
  /** Tasks running now: one per busy worker. */
  running: number;
  /** Tasks waiting: in the pool's queue, or sent to a worker behind its running task. */
  queued: number;
  completed: number;
  failed: number;
  restarts: number;
  /** Tasks sent to a worker that already had a task in flight (pipelined), since the pool started. */
  pipelined: number;
  /** The most tasks one worker has had in flight at once, since the pool started. */
  maxInFlight: number;
  /**
   * Tasks sent back to the front of the queue because their worker was stopped: never started,
   * or finished with their reply still in the worker (those run again).
   */
  requeued: number;
  /** Messages posted to workers, and received from them, since the pool started (each carries one task or more). */
  messagesSent: number;
  messagesReceived: number;
  /** Kept output buffers sent with a task for its output, since the pool started; and the bytes kept now. */
  outputBuffersReused: number;
  outputPoolBytes: number;
}
