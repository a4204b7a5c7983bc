// What agents report, applied to the task state machine: a task's start, its result or
// failure (first result wins; a stale or foreign update is rejected), a node's loss (its
// unfinished tasks are retried elsewhere), and a client's cancel.
import { failedPrecondition } from "../../common/errors.js";
import { codeOf, isRetryable } from "../../common/task-errors.js";
import { boundLogLines } from "../../common/kernel-log.js";
import type { TaskUpdate } from "../../common/types.js";
import { outputName, type BlobRefShape } from "../backends/types.js";
import { isTerminalJob, isTerminalTask, taskKeyOf, type JobRecord, type TaskErrorShape, type TaskStateName } from "../model.js";
import type { NodeEntry } from "../registry.js";
import { rejectUpdate } from "../update-guard.js";
import type { CoreContext } from "./context.js";
import type { Dispatcher } from "./dispatch.js";
import type { TaskStates } from "./task-states.js";

/** What a task update needs to learn from placement: the run time of a task that succeeded. */
export type ObserveRun = (key: string, kernelId: string, nodeId: string, runMs: number) => void;

export class TaskUpdates {
  constructor(
    private readonly ctx: CoreContext,
    private readonly states: Pick<TaskStates, "settled" | "isCommitting" | "setTaskState" | "markStarted" | "emitTask" | "finishTask" | "retryOrFail" | "requeue">,
    private readonly dispatch: Pick<Dispatcher, "settleTakeBack">,
    private readonly observeRun: ObserveRun,
  ) {}

  async onTaskUpdate(nodeId: string, update: TaskUpdate): Promise<void> {
    let u = update;
    const { counters, log, registry } = this.ctx;
    const job = this.ctx.table.get(u.jobId);
    const task = job?.tasks[u.taskIndex];
    // A job that was cancelled and forgotten, garbage, or an update from a node never given this attempt.
    const rejected = !job || !task ? "unknown_task" : rejectUpdate(task, nodeId, u.attempt);
    if (rejected || !job || !task) {
      this.ctx.events.emit("update_rejected", rejected || "unknown_task", nodeId);
      return;
    }
    // An output by reference counts only once its bytes are kept, as uploaded by this attempt.
    let outputRef: BlobRefShape | undefined;
    if (u.state === "TASK_STATE_SUCCEEDED" && u.outputRef) {
      outputRef = { sha256: u.outputRef.sha256, sizeBytes: Number(u.outputRef.sizeBytes) };
      const problem = await this.checkOutput(job.id, u, outputRef);
      if (problem) {
        outputRef = undefined;
        u = { ...u, state: "TASK_STATE_FAILED", outputRef: null, error: { code: "INTERNAL", message: problem, kind: "TASK_ERROR_CODE_INTERNAL", retryable: true } };
      }
    }
    // A result for this task is being stored: decide on this update once that is settled.
    await this.states.settled(task);
    const key = taskKeyOf(job, task);
    const state = u.state as TaskStateName;
    if (state === "TASK_STATE_RUNNING") {
      if (task.attempt === u.attempt && task.nodeId === nodeId && task.state === "TASK_STATE_ASSIGNED") {
        this.states.setTaskState(job, task, "TASK_STATE_RUNNING");
        this.states.markStarted(job);
        this.states.emitTask(job, task);
      }
      return;
    }
    // Agents leave out RUNNING for a task that finished in the same turn: its final word is its start too.
    if (job.state === "JOB_STATE_PENDING" && !isTerminalTask(task.state)) this.states.markStarted(job);
    // Any final word from a node frees its slot for that task.
    registry.removeTask(nodeId, key, state === "TASK_STATE_SUCCEEDED");
    const wasTakingBack = task.nodeId === nodeId && this.dispatch.settleTakeBack(key);
    if (state === "TASK_STATE_SUCCEEDED") this.observeRun(key, job.kernelId, nodeId, u.runMs);
    if (isTerminalTask(task.state)) {
      if (state === "TASK_STATE_SUCCEEDED") {
        counters.duplicateResults++;
        log.debug({ event: "duplicate_result", jobId: job.id, task: task.index, nodeId }, "dropped a second result");
      }
      return;
    }
    // The kernel's log, bounded and sanitised again here: the store keeps no more than any agent may send.
    const logs = boundLogLines(u.logs);
    const withLogs = logs.length > 0 ? { logs } : {};
    if (state === "TASK_STATE_SUCCEEDED") {
      // The first result wins even if it comes from an earlier attempt whose node we had given up on.
      await this.states.finishTask(job, task, {
        state: "TASK_STATE_SUCCEEDED",
        output: u.output,
        ...(outputRef ? { outputRef } : {}),
        from: { nodeId, attempt: u.attempt, runMs: u.runMs, ...(u.backend ? { backend: u.backend } : {}), ...withLogs },
      });
      return;
    }
    if (u.attempt !== task.attempt || task.nodeId !== nodeId) return; // stale failure of a superseded attempt
    if (state === "TASK_STATE_CANCELLED" && wasTakingBack) {
      // We asked for it back before it started: place it again, without using up an attempt.
      this.states.requeue(job, task, true);
      return;
    }
    if (state === "TASK_STATE_CANCELLED") {
      // An agent only cancels what we asked it to, or when it shuts down: try elsewhere.
      await this.states.retryOrFail(job, task, { code: "AGENT_LOST", message: u.error?.message ?? "agent cancelled the task" });
      return;
    }
    const error: TaskErrorShape = { code: codeOf(u.error), message: u.error?.message || "task failed" };
    if (error.code === "OUTPUT_UNSTORED") {
      // The store would not keep the output (unavailable past the agent's retries): not the task's
      // fault, so it runs again without using up an attempt. Each round costs the agent its retry
      // window first, so an outage re-runs a task about once per UPLOAD_RETRY_MS, not in a spin.
      this.ctx.log.warn({ event: "task_output_unstored", jobId: job.id, task: task.index, nodeId, attempt: u.attempt, err: error.message }, "the store would not keep a task's output; placing it again");
      this.states.requeue(job, task, true, error);
      return;
    }
    if (!isRetryable(error.code)) {
      await this.states.finishTask(job, task, { state: "TASK_STATE_FAILED", error, output: Buffer.alloc(0), from: { nodeId, attempt: u.attempt, runMs: u.runMs, ...withLogs } });
    } else {
      await this.states.retryOrFail(job, task, error, { nodeId, attempt: u.attempt, runMs: u.runMs, ...withLogs });
    }
  }

  /** Why the update's output by reference cannot be taken (undefined: it is kept, as named). */
  private async checkOutput(jobId: string, u: TaskUpdate, ref: BlobRefShape): Promise<string | undefined> {
    try {
      const kept = await this.ctx.store.getOutputRef(jobId, outputName(u.taskIndex, u.attempt));
      if (kept && kept.sha256 === ref.sha256 && kept.sizeBytes === ref.sizeBytes) return undefined;
      return `the result names an output (${ref.sha256.slice(0, 12)}…, ${ref.sizeBytes} bytes) that this attempt did not upload`;
    } catch (err) {
      return `could not check the task's uploaded output: ${(err as Error).message}`;
    }
  }

  /** The registry has released the node's tasks (`released`): each unfinished one is queued again. */
  async onNodeDown(node: NodeEntry, reason: string, released: readonly string[]): Promise<void> {
    this.ctx.log.warn({ event: "node_down", nodeId: node.id, reason, tasks: released.length }, "node down; re-placing its tasks");
    this.ctx.events.emit("node_down", node);
    for (const key of released) {
      const held = this.ctx.table.task(key);
      this.dispatch.settleTakeBack(key);
      if (!held) continue;
      const { job, task } = held;
      // A task whose result is being stored is not lost with the node: its result is in hand.
      if (isTerminalTask(task.state) || task.nodeId !== node.id || this.states.isCommitting(task)) continue;
      await this.states.retryOrFail(job, task, { code: "AGENT_LOST", message: `node ${node.id} was lost: ${reason}` });
    }
  }

  /** Cancels every unfinished task of the job (those running are stopped on their nodes). */
  async cancel(job: JobRecord): Promise<JobRecord> {
    const { registry, log } = this.ctx;
    const jobId = job.id;
    if (isTerminalJob(job.state)) {
      throw failedPrecondition(`job ${jobId} has already finished (${job.state.replace("JOB_STATE_", "").toLowerCase()}); there is nothing to cancel`);
    }
    this.ctx.queue.removeJob(jobId);
    const byNode = new Map<string, number[]>();
    for (const task of job.tasks) {
      if (isTerminalTask(task.state)) continue;
      if (task.nodeId && (task.state === "TASK_STATE_ASSIGNED" || task.state === "TASK_STATE_RUNNING")) {
        const list = byNode.get(task.nodeId) ?? [];
        list.push(task.index);
        byNode.set(task.nodeId, list);
        registry.removeTask(task.nodeId, taskKeyOf(job, task), false);
      }
      await this.states.finishTask(job, task, { state: "TASK_STATE_CANCELLED", error: { code: "CANCELLED", message: "job cancelled" }, output: Buffer.alloc(0) });
    }
    for (const [nodeId, indexes] of byNode) registry.sendTo(nodeId, { cancel: { jobId, taskIndexes: indexes } });
    log.info({ event: "job_cancelled", jobId, runningStopped: [...byNode.values()].reduce((s, l) => s + l.length, 0) }, "job cancelled");
    return job;
  }
}
