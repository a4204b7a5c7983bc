// The pipelining policy, as pure functions plus the per-kernel run-time averages they read.
// A worker gets more than one task in flight only while the tasks' expected run time adds up to
// about PIPELINE_BUDGET_MS, so pipelining hides the message round trip of tiny tasks and nothing
// else; a kernel never measured, or slower than that, runs one task per worker at a time. A busy
// worker is topped up only once it is down to half its depth, so what it is sent goes by the
// dozen, not one task per message as each reply comes in.

/** Pipelining budget in ms of expected run time per worker. */
export const PIPELINE_BUDGET_MS = 2;
/** Weight of the newest run time in a kernel's moving average. */
export const EWMA_ALPHA = 0.2;
/** Run times below this count as this (a no-op kernel still costs an instantiation). */
export const MIN_RUN_MS = 0.005;
export const DEFAULT_MAX_PIPELINE_DEPTH = 64;

/** A kernel's average run time after one more measured run; `atLeast` (a timeout) never lets it fall below `ms`. */
export function nextRunMsAverage(previous: number | undefined, ms: number, atLeast = false): number {
  const average = previous === undefined ? ms : previous + EWMA_ALPHA * (ms - previous);
  return atLeast ? Math.max(average, ms) : average;
}

/** How many tasks of a kernel with this average run time one worker may hold: as many as fit the budget, within 1..maxDepth. */
export function depthForRunMs(averageMs: number, maxDepth: number): number {
  const depth = Math.floor(PIPELINE_BUDGET_MS / Math.max(averageMs, MIN_RUN_MS));
  return Math.max(1, Math.min(maxDepth, depth));
}

/** What the policy needs to know of one worker. */
export interface WorkerPipeline {
  /** Tasks sent to it and not answered yet, the running one included. */
  readonly held: number;
  /** Whether this pump may add tasks behind the ones in flight (see lowWater). */
  readonly refill: boolean;
  /** The kernels of the tasks in flight. */
  readonly kernelsHeld: Iterable<string>;
}

/** How few tasks a worker must have in flight before it is given more: half the smallest depth of the kernels it holds. */
export function lowWater(kernelsInFlight: Iterable<string>, depthOf: (kernelId: string) => number, maxDepth: number): number {
  let depth = maxDepth;
  for (const kernelId of kernelsInFlight) depth = Math.min(depth, depthOf(kernelId));
  return Math.floor(depth / 2);
}

/**
 * Whether a task of `kernelId` may be sent to this worker now. An idle worker takes anything.
 * Behind another task only: a task whose input would be transferred (a big one) waits for an
 * idle worker, so a task sent back to the queue still has its input; and no kernel in flight,
 * the new one included, may be held deeper than its own depth.
 */
export function mayTake(worker: WorkerPipeline, kernelId: string, transfersInput: boolean, depthOf: (kernelId: string) => number, maxDepth: number): boolean {
  const n = worker.held;
  if (n === 0) return true;
  if (!worker.refill || n >= maxDepth || transfersInput) return false;
  if (n >= depthOf(kernelId)) return false;
  for (const other of worker.kernelsHeld) if (n >= depthOf(other)) return false;
  return true;
}

/** Per kernel: the moving average of its measured run time, and the depth that allows. */
export class KernelDepths {
  private readonly runMsAverage = new Map<string, number>();
  private readonly depths = new Map<string, number>();
  /** `depth` bound to this instance, for the functions above. */
  readonly depthOf = (kernelId: string): number => this.depths.get(kernelId) ?? 1;

  constructor(readonly maxDepth: number) {}

  noteRun(kernelId: string, ms: number, atLeast = false): void {
    const average = nextRunMsAverage(this.runMsAverage.get(kernelId), ms, atLeast);
    this.runMsAverage.set(kernelId, average);
    this.depths.set(kernelId, depthForRunMs(average, this.maxDepth));
  }
}
