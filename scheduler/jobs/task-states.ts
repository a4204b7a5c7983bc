// The task and job state machine's writer: every change of a task's or a job's state goes
// through here, with its counts, events and store writes in the order that keeps them true.
//
// Store-outcome ordering: a task's final result is written to the store first (retried until it
// is stored), and only then does its state change in memory, in one synchronous step together
// with its event and, if it was the last, the job's final state. So a result is never reported
// without being kept, and a watcher sees every task's outcome before the job's final snapshot.
import type { BlobRefShape, StoredResult } from "../backends/types.js";
import { resultCacheKey } from "../backends/codec.js";
import { isTerminalJob, isTerminalTask, taskKeyOf, type JobRecord, type TaskErrorShape, type TaskRecord, type TaskStateName } from "../model.js";
import { rememberHolder } from "../update-guard.js";
import type { DurableWrites } from "../store-writes.js";
import type { CoreContext, WakeDispatch } from "./context.js";
import { jobMetaJson, toJobProto, toTaskEvent } from "./proto.js";

/** What a final update (or the core itself) says about a task, applied only once it is stored. */
export interface FinalOutcome {
  state: TaskStateName;
  error?: TaskErrorShape;
  output: Buffer;
  /** Set (output empty) when the output was uploaded and is kept by reference. */
  outputRef?: BlobRefShape;
  /** Set when the outcome comes from a node's result (first result wins, whichever attempt). */
  from?: { nodeId: string; attempt: number; runMs: number; backend?: string; logs?: string[] };
}

export class TaskStates {
  /**
   * Tasks whose final result is being written to the store. Until the write succeeds the task
   * keeps its state (so nothing is reported that is not kept); other updates for it wait.
   */
  private readonly committing = new Map<TaskRecord, Promise<boolean>>();

  constructor(
    private readonly ctx: CoreContext,
    private readonly durable: DurableWrites,
    private readonly wakeDispatch: WakeDispatch,
  ) {}

  /** Whether the task's final result is being stored right now. */
  isCommitting(task: TaskRecord): boolean {
    return this.committing.has(task);
  }

  /** Resolves once no result of the task is being stored. */
  async settled(task: TaskRecord): Promise<void> {
    for (let c = this.committing.get(task); c; c = this.committing.get(task)) await c.catch(() => undefined);
  }

  setTaskState(job: JobRecord, task: TaskRecord, state: TaskStateName): void {
    job.counts[task.state]--;
    task.state = state;
    job.counts[state]++;
  }

  markStarted(job: JobRecord): void {
    if (!job.startedAtMs) job.startedAtMs = Date.now();
    if (job.state === "JOB_STATE_PENDING") this.setJobState(job, "JOB_STATE_RUNNING");
  }

  /** Sends the task's state to the job's watchers (built only when someone watches). */
  emitTask(job: JobRecord, task: TaskRecord, error?: TaskErrorShape): void {
    if (!this.ctx.watchers.watched(job.id)) return;
    this.ctx.watchers.publish(job.id, toTaskEvent(job, task, error));
  }

  /** Back to the queue's front, to be placed again (`migrated`: taken back before it started, no attempt used). */
  requeue(job: JobRecord, task: TaskRecord, migrated: boolean, error?: TaskErrorShape): void {
    rememberHolder(task);
    if (!migrated) task.attempt++;
    task.nodeId = "";
    if (migrated) this.ctx.counters.migrations++;
    else {
      job.retries++;
      this.ctx.counters.retries++;
    }
    this.setTaskState(job, task, "TASK_STATE_PENDING");
    if (!migrated) {
      task.queuedAtMs = Date.now();
      this.ctx.events.emit("task_retry", job, task, error!);
    }
    this.emitTask(job, task, error);
    this.ctx.queue.pushFront({ jobId: job.id, taskIndex: task.index });
    this.wakeDispatch();
  }

  /** Another attempt if the job allows one, else the task fails with `error`. */
  async retryOrFail(job: JobRecord, task: TaskRecord, error: TaskErrorShape, from?: FinalOutcome["from"]): Promise<void> {
    if (task.attempt >= job.maxAttempts) {
      // `from`: the node's failed last attempt, with what its kernel logged.
      await this.finishTask(job, task, { state: "TASK_STATE_FAILED", error: { code: error.code, message: `${error.message} (after ${task.attempt} attempts)` }, output: Buffer.alloc(0), ...(from ? { from } : {}) });
      return;
    }
    this.requeue(job, task, false, error);
  }

  /**
   * Ends a task (see the top of this file for the order). Returns false when the task had
   * already ended (the outcome is dropped).
   */
  async finishTask(job: JobRecord, task: TaskRecord, outcome: FinalOutcome): Promise<boolean> {
    const { counters, registry, settings, store, log } = this.ctx;
    await this.settled(task);
    if (isTerminalTask(task.state)) {
      if (outcome.state === "TASK_STATE_SUCCEEDED") counters.duplicateResults++;
      return false;
    }
    const write = this.storeOutcome(job, task, outcome);
    this.committing.set(task, write);
    let recorded: boolean;
    try {
      recorded = await write;
    } finally {
      this.committing.delete(task);
    }
    if (!recorded) {
      counters.duplicateResults++;
      // Another record came first (a predecessor's result, written before it failed over): the
      // store is the truth, and the job's state must follow what GetResults will say.
      const stored = await this.storedOutcome(job, task);
      if (stored) outcome = stored;
    }
    // ── from here to the end, synchronous: the task's outcome, then (if last) the job's. ──
    const { state, error, output, outputRef, from } = outcome;
    if (from) {
      const current = task.nodeId;
      if (current && current !== from.nodeId && current !== "result-cache") {
        // The first result wins; the attempt running elsewhere is no longer needed.
        registry.removeTask(current, taskKeyOf(job, task), false);
        registry.sendTo(current, { cancel: { jobId: job.id, taskIndexes: [task.index] } });
      }
      task.nodeId = from.nodeId;
      task.attempt = from.attempt;
      task.runMs = from.runMs;
      if (from.backend) task.backend = from.backend;
    }
    const cacheKey =
      // An output by reference is kept with its job's results only, never in the cache.
      state === "TASK_STATE_SUCCEEDED" && recorded && !outputRef && settings.resultCache && !job.skipCache && task.input && task.nodeId !== "result-cache"
        ? resultCacheKey(job.kernelId, task.index + 1, task.input)
        : undefined;
    this.setTaskState(job, task, state);
    task.input = undefined;
    if (error) {
      task.error = error;
      if (!job.firstError && state === "TASK_STATE_FAILED") job.firstError = error;
    }
    if (state === "TASK_STATE_SUCCEEDED") counters.tasksSucceeded++;
    if (state === "TASK_STATE_FAILED") counters.tasksFailed++;
    this.emitTask(job, task, error);
    this.ctx.events.emit("task_finished", job, task);
    const completed = this.completeIfDone(job);
    // The cache only saves work later: a failed write is logged, not retried.
    if (cacheKey) {
      await store.putCachedResult(cacheKey, output).catch((err: Error) =>
        log.warn({ event: "result_cache_write_failed", jobId: job.id, task: task.index, err: err.message }, "could not cache a result"),
      );
    }
    await completed;
    return true;
  }

  /** Writes a task's final result to the store, retrying until it is stored; false if one was already there. */
  private storeOutcome(job: JobRecord, task: TaskRecord, outcome: FinalOutcome): Promise<boolean> {
    const from = outcome.from;
    const result: StoredResult = {
      taskIndex: task.index,
      state: outcome.state as StoredResult["state"],
      output: outcome.output,
      ...(outcome.outputRef ? { outputRef: outcome.outputRef } : {}),
      ...(outcome.error ? { error: outcome.error } : {}),
      nodeId: from?.nodeId ?? task.nodeId,
      attempt: from?.attempt ?? task.attempt,
      runMs: from?.runMs ?? task.runMs,
      ...((from?.backend ?? task.backend) ? { backend: (from?.backend ?? task.backend)! } : {}),
      ...(from?.logs && from.logs.length > 0 ? { logs: from.logs } : {}),
    };
    return this.durable.run("a task result", { jobId: job.id, task: task.index }, () => this.ctx.store.recordResult(job.id, result));
  }

  /** The task's recorded result, as an outcome (read back after our own record lost the race). */
  private async storedOutcome(job: JobRecord, task: TaskRecord): Promise<FinalOutcome | undefined> {
    const [r] = await this.durable.run("reading a recorded result", { jobId: job.id, task: task.index }, () => this.ctx.store.getResults(job.id, task.index, 1));
    if (!r || r.taskIndex !== task.index) return undefined;
    return {
      state: r.state,
      output: r.output,
      ...(r.outputRef ? { outputRef: r.outputRef } : {}),
      ...(r.error ? { error: r.error } : {}),
      from: { nodeId: r.nodeId, attempt: r.attempt, runMs: r.runMs, ...(r.backend ? { backend: r.backend } : {}), ...(r.logs ? { logs: r.logs } : {}) },
    };
  }

  /** When every task has ended: the job's final state, in memory now and in the store (awaited). */
  completeIfDone(job: JobRecord): Promise<void> {
    const c = job.counts;
    if (c.TASK_STATE_SUCCEEDED + c.TASK_STATE_FAILED + c.TASK_STATE_CANCELLED !== job.tasks.length || isTerminalJob(job.state)) return Promise.resolve();
    const final = c.TASK_STATE_CANCELLED > 0 ? "JOB_STATE_CANCELLED" : c.TASK_STATE_FAILED > 0 ? "JOB_STATE_FAILED" : "JOB_STATE_SUCCEEDED";
    job.finishedAtMs = Date.now();
    this.setJobState(job, final);
    this.ctx.queue.removeJob(job.id);
    this.ctx.log.info(
      { event: "job_finished", jobId: job.id, state: final, tasks: job.tasks.length, failed: c.TASK_STATE_FAILED, retries: job.retries, ms: job.finishedAtMs - job.submittedAtMs },
      "job finished",
    );
    return this.recordFinished(job);
  }

  /**
   * Every result is already stored, so the job's final state follows from them: if these writes
   * keep failing and the scheduler dies, the next one restores the job and finishes it again.
   */
  private async recordFinished(job: JobRecord): Promise<void> {
    const { store } = this.ctx;
    try {
      await this.durable.run("a finished job", { jobId: job.id }, async () => {
        await store.putJobMeta(job.id, jobMetaJson(job));
        await store.markJobFinished(job.id);
      });
    } catch (err) {
      this.ctx.log.warn({ event: "job_final_state_unstored", jobId: job.id, err: (err as Error).message }, "stopping before the job's final state was stored; it is restored and finished again on restart");
    }
    // Retention: memory forgets its oldest finished jobs and the store is trimmed to the same
    // count. Not awaited (nothing waits on it) but never left unhandled: a write refused here
    // (fenced while the lease is unconfirmed, Redis refusing writes) is made good by the next
    // trim. An unhandled one killed a deposed leader (chaos run, seed 1).
    if (this.ctx.table.retire(job).length > 0) {
      store.trimFinishedJobs(this.ctx.config.retainFinishedJobs).catch((err: Error) =>
        this.ctx.log.warn({ event: "finished_jobs_trim_failed", err: err.message }, "could not trim the store's finished jobs; the next finished job tries again"),
      );
    }
  }

  private setJobState(job: JobRecord, state: JobRecord["state"]): void {
    job.state = state;
    if (this.ctx.watchers.watched(job.id)) this.ctx.watchers.publish(job.id, { jobId: job.id, atMs: Date.now(), job: toJobProto(job) });
    this.ctx.events.emit("job_state", job);
  }
}
