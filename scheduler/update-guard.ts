// Results only from where they belong. A task update is accepted only from a node that was
// given that task at that attempt: the current assignment, or an earlier holder of it (the
// documented late-result case: a node we gave up on, or one we took a not-yet-started task back
// from, may still finish its attempt, and if the task is unfinished its result is the first).
// Everything else is dropped and counted by reason in distx_rejected_updates_total.
// Over Kafka, a record's node id is first proven by its signature (common/record-signature.ts);
// records refused there are counted here too, by the reasons RECORD_REJECT_REASONS names.
import { RECORD_REJECT_REASONS, type RecordRejectReason } from "../common/record-signature.js";
import type { TaskRecord } from "./model.js";

export type RejectReason = "unknown_task" | "not_assigned" | "wrong_attempt" | RecordRejectReason;
export const REJECT_REASONS: readonly RejectReason[] = ["unknown_task", "not_assigned", "wrong_attempt", ...RECORD_REJECT_REASONS];

/** Earlier holders kept per task: attempts are ≤ 100 and take-backs rare, so this bound is loose. */
const MAX_FORMER_HOLDERS = 32;

/** Notes that `task.nodeId` held `task.attempt` before the task moves on (retry or take-back). */
export function rememberHolder(task: TaskRecord): void {
  if (!task.nodeId || task.nodeId === "result-cache") return;
  const list = (task.formerHolders ??= []);
  list.push(`${task.attempt}@${task.nodeId}`);
  if (list.length > MAX_FORMER_HOLDERS) list.shift();
}

/** Undefined when `nodeId` may report `attempt` of `task`; otherwise why not. */
export function rejectUpdate(task: TaskRecord, nodeId: string, attempt: number): RejectReason | undefined {
  if (task.nodeId === nodeId && task.attempt === attempt) return undefined;
  const former = task.formerHolders;
  if (former?.includes(`${attempt}@${nodeId}`)) return undefined;
  const heldSomeAttempt = task.nodeId === nodeId || (former?.some((h) => h.endsWith(`@${nodeId}`)) ?? false);
  return heldSomeAttempt ? "wrong_attempt" : "not_assigned";
}
