// Messages between the agent's main thread and its kernel worker threads.
import type { KernelFailureCode } from "../wasm/run-kernel.js";

export interface RunRequest {
  type: "run";
  id: number;
  kernelId: string;
  /** Sent only the first time this worker sees the kernel; workers keep compiled modules by id. */
  module?: WebAssembly.Module;
  /** An ArrayBuffer (transferred or packed), or a blob's SharedArrayBuffer (shared, never copied). */
  input: ArrayBuffer | SharedArrayBuffer;
  inputOffset: number;
  inputLength: number;
  /** The job's shared inputs (kernels read them through the shared_input imports). */
  shared?: { buffer: SharedArrayBuffer; offset: number; length: number }[];
  memoryLimitBytes: number;
  seed: number;
  /** The task's log cap (env.log); without it the kernel's lines are dropped. */
  log?: { maxBytes: number; maxLines: number };
  /**
   * A recycled buffer (transferred: the worker is its only owner) of the length this kernel's
   * last output had: the task's output goes into it if it has that length, else it comes back
   * unused as the reply's `spare`.
   */
  spare?: ArrayBuffer;
}

/** `spare`: the request's recycled buffer, back unused (transferred). */
export type RunResponse =
  | { type: "done"; id: number; output: ArrayBuffer; runMs: number; memoryBytes: number; logs?: string[]; spare?: ArrayBuffer }
  | { type: "failed"; id: number; code: KernelFailureCode; message: string; runMs: number; logs?: string[]; spare?: ArrayBuffer };

/** What the pool posts: one request, or several for one worker at once (run in order). */
export type ToWorker = RunRequest | { type: "batch"; requests: RunRequest[] };

/** What a worker posts: the replies of the tasks it finished since its last message, in order. */
export type FromWorker = RunResponse[];

/**
 * What a worker is doing now, in memory it shares with the pool: the pool reads it to know which
 * task is running while replies are still on their way (a worker answers several tasks at once).
 */
export class WorkerActivity {
  /** [0]: id of the task running now, 0 when none; [1]: how many tasks the worker has finished. */
  private readonly words: Int32Array;
  /** [0]: when the running task started (ms since the epoch, fractional). */
  private readonly started: Float64Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(16)) {
    this.words = new Int32Array(buffer, 0, 2);
    this.started = new Float64Array(buffer, 8, 1);
  }

  /** Worker side: task `id` starts now. */
  begin(id: number, atMs: number): void {
    // The time first, then the id: a reader that sees the id sees its start time (or a later one).
    this.started[0] = atMs;
    Atomics.store(this.words, 0, id);
  }

  /** Worker side: the running task has finished (its reply may not be posted yet). */
  end(): void {
    Atomics.add(this.words, 1, 1);
    Atomics.store(this.words, 0, 0);
  }

  get finished(): number {
    return Atomics.load(this.words, 1);
  }

  /** The task running now and when it started, or undefined when the worker runs none. */
  running(): { id: number; startedAtMs: number } | undefined {
    for (;;) {
      const id = Atomics.load(this.words, 0);
      if (id === 0) return undefined;
      const startedAtMs = this.started[0]!;
      if (Atomics.load(this.words, 0) === id) return { id, startedAtMs };
    }
  }
}

/**
 * Tasks a worker has finished whose replies the pool has not handled yet. Both counts are 32-bit
 * and wrap (a busy worker passes 2³¹ tasks in days), so the difference is taken in 32 bits too.
 */
export const unheardCount = (finished: number, received: number): number => (finished - received) | 0;

/** Wall-clock ms that mean the same in every thread (performance.now() has a per-thread origin). */
export const epochMs = (): number => performance.timeOrigin + performance.now();
