// The one task-error taxonomy (proto: TaskErrorCode). Errors are classified where they happen
// (agent: kernel run, kernel fetch, result produce; scheduler: node lost, unschedulable) and the
// core decides retry-or-fail with isRetryable alone, so a transient fault never fails a task for
// good and a deterministic one is never retried in a loop.
import { status } from "@grpc/grpc-js";
import type { TaskErrorIn } from "./types.js";

export const TASK_ERROR_CODES = [
  "TRAP",
  "TIMEOUT",
  "MEMORY_LIMIT",
  "INVALID_KERNEL",
  "KERNEL_FETCH_FAILED",
  "WORKER_CRASHED",
  "AGENT_LOST",
  "CANCELLED",
  "OUTPUT_TOO_LARGE",
  "UNSCHEDULABLE",
  "INTERNAL",
  "OUTPUT_UNSTORED",
] as const;

export type TaskErrorCode = (typeof TASK_ERROR_CODES)[number];

/** Codes that say something about the kernel, the input or the job: another attempt fails again. */
const PERMANENT: ReadonlySet<TaskErrorCode> = new Set(["TRAP", "TIMEOUT", "MEMORY_LIMIT", "INVALID_KERNEL", "CANCELLED", "OUTPUT_TOO_LARGE", "UNSCHEDULABLE"]);

export function isTaskErrorCode(code: string): code is TaskErrorCode {
  return (TASK_ERROR_CODES as readonly string[]).includes(code);
}

/** Whether another attempt (on this node or another) could succeed. Unknown codes count as transient. */
export function isRetryable(code: string): boolean {
  return !PERMANENT.has(code as TaskErrorCode);
}

/**
 * The code of an error as it arrives on the wire: the typed `kind` when the sender set it, else
 * the string (older agents); anything unrecognised is INTERNAL.
 */
export function codeOf(e: { code?: string; kind?: string } | null | undefined): TaskErrorCode {
  const fromKind = e?.kind?.replace(/^TASK_ERROR_CODE_/, "");
  if (fromKind && fromKind !== "UNSPECIFIED" && isTaskErrorCode(fromKind)) return fromKind;
  if (e?.code && isTaskErrorCode(e.code)) return e.code;
  return "INTERNAL";
}

/** The wire form: the string code, the typed kind and whether a retry is safe, all agreeing. */
export function taskErrorProto(e: { code: string; message: string }): TaskErrorIn {
  const code = isTaskErrorCode(e.code) ? e.code : "INTERNAL";
  return { code: e.code, message: e.message, kind: `TASK_ERROR_CODE_${code}`, retryable: isRetryable(code) };
}

/**
 * A failed FetchKernel call. The scheduler says NOT_FOUND or INVALID_ARGUMENT only when the kernel
 * really is unknown or its id malformed; anything else (unreachable, deadline, store down) is
 * transient.
 */
export function fetchErrorCode(grpcCode: number | undefined): "INVALID_KERNEL" | "KERNEL_FETCH_FAILED" {
  return grpcCode === status.NOT_FOUND || grpcCode === status.INVALID_ARGUMENT ? "INVALID_KERNEL" : "KERNEL_FETCH_FAILED";
}
