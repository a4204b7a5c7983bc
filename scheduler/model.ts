// In-memory shapes the scheduler works with. Wire shapes live in proto/ (see common/types.ts).
import { parseTaskKey, taskKey } from "../common/task-key.js";
import type { BlobRefShape } from "./backends/types.js";

export type TaskStateName =
  | "TASK_STATE_PENDING"
  | "TASK_STATE_ASSIGNED"
  | "TASK_STATE_RUNNING"
  | "TASK_STATE_SUCCEEDED"
  | "TASK_STATE_FAILED"
  | "TASK_STATE_CANCELLED";

export type JobStateName =
  | "JOB_STATE_PENDING"
  | "JOB_STATE_RUNNING"
  | "JOB_STATE_SUCCEEDED"
  | "JOB_STATE_FAILED"
  | "JOB_STATE_CANCELLED";

export interface TaskErrorShape {
  code: string;
  message: string;
}

export interface ResourceNeeds {
  cores: number;
  memoryBytes: number;
  gpu: boolean;
  nodeSelector: Record<string, string>;
  kind: "KERNEL_KIND_WASM" | "KERNEL_KIND_GPU";
  /** GPU kernels: what to do without a GPU agent (WAIT when unset). */
  gpuFallback?: "GPU_FALLBACK_WAIT" | "GPU_FALLBACK_CPU" | "GPU_FALLBACK_REJECT";
}

export interface TaskRecord {
  index: number;
  state: TaskStateName;
  attempt: number;
  nodeId: string;
  /** Dropped once the task ends, so finished jobs hold no inputs. */
  input: Buffer | undefined;
  /** Set instead of input when the input is stored by reference (a blob in the state store). */
  inputRef?: BlobRefShape;
  runMs: number;
  error?: TaskErrorShape;
  /** When the task last entered the queue (submit or retry): placement latency is measured from here. */
  queuedAtMs?: number;
  /** What ran the successful attempt: wasm, headlessgl or cpu. */
  backend?: string;
  /** "job id/index", the task's key in node and placement bookkeeping; see taskKeyOf(). */
  key?: string;
  /** "attempt@node" of earlier holders, whose late results are still theirs to give (update-guard.ts). */
  formerHolders?: string[];
}

/**
 * The task's key ("job id/index"), built once: every lookup by it then reuses one string whose
 * hash V8 has cached, instead of building and hashing a fresh one per event.
 */
export function taskKeyOf(job: { id: string }, task: TaskRecord): string {
  return (task.key ??= taskKey(job.id, task.index));
}

export { parseTaskKey };

export interface JobRecord {
  id: string;
  name: string;
  kernelId: string;
  state: JobStateName;
  priority: number;
  timeoutMs: number;
  maxAttempts: number;
  needs: ResourceNeeds;
  submittedAtMs: number;
  startedAtMs: number;
  finishedAtMs: number;
  retries: number;
  counts: Record<TaskStateName, number>;
  tasks: TaskRecord[];
  firstError?: TaskErrorShape;
  /** The job opted out of the result cache. */
  skipCache?: boolean;
  /** The client's idempotency key and the fingerprint of its request (scheduler/idempotency.ts). */
  requestId?: string;
  requestFingerprint?: string;
  /** FAIL: refuse the job when no node could ever take it; WAIT (unset): queue with the reason shown. */
  unschedulable?: "UNSCHEDULABLE_WAIT" | "UNSCHEDULABLE_FAIL";
  /** The tenant it belongs to (absent: default) and the public id of the token that submitted it. */
  tenant?: string;
  tokenId?: string;
  /** Bytes of its inputs, held until it finishes (the tenant's jobBytes quota counts them). */
  inputBytes?: number;
  /** Bytes of its outputs kept by reference (the tenant's outputBytes quota counts them while the job is kept). */
  outputBytes?: number;
  /** Inputs every task reads, stored as blobs; a kernel reads them by index (their order). */
  sharedInputs?: SharedInputShape[];
}

/** A job's named input every task reads, by reference. */
export interface SharedInputShape {
  name: string;
  ref: BlobRefShape;
}

export const emptyCounts = (): Record<TaskStateName, number> => ({
  TASK_STATE_PENDING: 0,
  TASK_STATE_ASSIGNED: 0,
  TASK_STATE_RUNNING: 0,
  TASK_STATE_SUCCEEDED: 0,
  TASK_STATE_FAILED: 0,
  TASK_STATE_CANCELLED: 0,
});

export const isTerminalTask = (s: TaskStateName) =>
  s === "TASK_STATE_SUCCEEDED" || s === "TASK_STATE_FAILED" || s === "TASK_STATE_CANCELLED";

export const isTerminalJob = (s: JobStateName) =>
  s === "JOB_STATE_SUCCEEDED" || s === "JOB_STATE_FAILED" || s === "JOB_STATE_CANCELLED";
