// The scheduler's core: job and task state machines, the dispatch loop that places queued
// tasks on agents, and recovery when an agent is lost. gRPC handlers (services/) call into it.
//
// Guarantees:
//   * at-least-once execution: a task placed on an agent that dies is queued again;
//   * its result is recorded once: the first final update wins, later ones are counted and dropped.
import { EventEmitter } from "node:events";
import { randomUUID } from "node:crypto";
import type { SchedulerConfig } from "../common/config.js";
import type { Logger } from "../common/logger.js";
import { DistxError, failedPrecondition, invalidArgument, notFound, shuttingDown } from "../common/errors.js";
import { codeOf, isRetryable, taskErrorProto } from "../common/task-errors.js";
import type { JobEventIn, JobIn, TaskUpdate } from "../common/types.js";
import type { StateStore, StoredResult, TaskQueue } from "./backends/types.js";
import type { SubmissionRecord } from "./backends/bus.js";
import { resultCacheKey } from "./backends/codec.js";
import { backendError } from "./backends/errors.js";
import {
  emptyCounts,
  isTerminalJob,
  isTerminalTask,
  taskKey,
  type JobRecord,
  type ResourceNeeds,
  type TaskErrorShape,
  type TaskRecord,
  type TaskStateName,
} from "./model.js";
import { gpuRejection, placementNeeds } from "./placement/gpu.js";
import { checkKernelId, checkLoggedSubmission, checkSubmitFields, rejectionReason, type SubmitFields } from "./submit-validation.js";
import { rejectUpdate, rememberHolder } from "./update-guard.js";
import { explainFeasibility, unschedulableReason } from "./placement/feasibility.js";
import { PlacementController, type ForecastAccuracyEntry, type PredictedSaturation } from "./placement/controller.js";
import type { NodeEntry, NodeRegistry } from "./registry.js";
import { DurableWrites, type StoreWriteFailure } from "./store-writes.js";

/** What a final update (or the core itself) says about a task, applied only once it is stored. */
interface FinalOutcome {
  state: TaskStateName;
  error?: TaskErrorShape;
  output: Buffer;
  /** Set when the outcome comes from a node's result (first result wins, whichever attempt). */
  from?: { nodeId: string; attempt: number; runMs: number; backend?: string };
}

export interface SubmitRequest extends SubmitFields {
  gpuFallback?: ResourceNeeds["gpuFallback"];
  /** Run every task even when the result cache holds an identical one. */
  skipCache?: boolean;
  /** Set by scheduler/idempotency.ts: the job id derived from the client's request id, and the request's fingerprint. */
  jobId?: string;
  requestId?: string;
  requestFingerprint?: string;
  unschedulable?: JobRecord["unschedulable"];
  /** Whose job: the submitting token's tenant and id. */
  tenant?: string;
  tokenId?: string;
}


export interface SchedulerCounters {
  placements: number;
  retries: number;
  duplicateResults: number;
  tasksSucceeded: number;
  tasksFailed: number;
  /** Tasks answered from the result cache without running. */
  cacheHits: number;
  /** Failed attempts to write a result or a job's final state to the store (each is retried). */
  storeWriteFailures: number;
  /** Tasks taken back from a node before they started and placed again (no attempt used). */
  migrations: number;
}

/** Results read per store call when loading a finished job. */
const RESTORE_PAGE = 1000;

export class SchedulerCore extends EventEmitter {
  private readonly jobs = new Map<string, JobRecord>();
  private readonly finishedOrder: string[] = [];
  private dispatchScheduled = false;
  private accepting = true;
  readonly counters: SchedulerCounters = { placements: 0, retries: 0, duplicateResults: 0, tasksSucceeded: 0, tasksFailed: 0, cacheHits: 0, storeWriteFailures: 0, migrations: 0 };
  /** Set with a durable queue: a submission is written here before the client gets its job id. */
  journal?: (rec: SubmissionRecord) => Promise<void>;
  /** Whether identical tasks may be answered from the store's result cache. */
  resultCache = true;
  /** Admission check of a new job before it is recorded (per-tenant quotas); throws to refuse. Synchronous, so it cannot race. */
  admit?: (job: JobRecord) => void;
  readonly placement: PlacementController;
  /** Tasks (jobId/index) we asked a node to give back; they are queued again when it confirms. */
  private readonly takingBack = new Set<string>();
  /**
   * Tasks whose final result is being written to the store. Until the write succeeds the task
   * keeps its state (so nothing is reported that is not kept); other updates for it wait.
   */
  private readonly committing = new Map<TaskRecord, Promise<boolean>>();
  private readonly durable: DurableWrites;

  constructor(
    private readonly config: SchedulerConfig,
    readonly registry: NodeRegistry,
    readonly store: StateStore,
    private readonly queue: TaskQueue,
    private readonly log: Logger,
  ) {
    super();
    this.setMaxListeners(0);
    this.durable = new DurableWrites(log, (f: StoreWriteFailure) => {
      this.counters.storeWriteFailures++;
      this.emit("store_write_failed", f);
    });
    registry.on("ready", () => this.scheduleDispatch());
    registry.on("capacity", () => this.scheduleDispatch());
    registry.on("task_released", () => this.scheduleDispatch());
    registry.on("down", (node, reason, released) => {
      this.onNodeDown(node, reason, released).catch((err: Error) => this.log.error({ event: "node_down_failed", nodeId: node.id, err: err.message }, "could not re-place a lost node's tasks"));
    });
    registry.on("recovered", (node, downForMs) => {
      this.log.info({ event: "node_recovered", nodeId: node.id, downForMs }, "node answers again; taking new work");
      this.emit("node_recovered", node);
    });
    registry.on("draining", (node) => this.log.info({ event: "node_draining", nodeId: node.id }, "node draining"));
    this.placement = new PlacementController(config, registry, {
      saturation: (e) => {
        this.log.warn({ event: "predicted_saturation", ...e }, `${e.scope === "node" ? `node ${e.nodeId}` : "cluster"} predicted to saturate in ${e.etaMs} ms`);
        this.emit("predicted_saturation", e);
      },
      queuedOn: (node) => this.queuedOn(node),
      takeBack: (node, keys, reason) => this.takeBack(node, keys, reason),
    });
  }

  /** Online forecast accuracy per node and metric (ratio < 1 beats the last-value forecast). */
  forecastAccuracy(): ForecastAccuracyEntry[] {
    return this.placement.accuracy();
  }

  // ───────────── client operations ─────────────

  /** Kinds of kernels seen: a kernel is immutable (addressed by its hash), so one store read each is enough. */
  private readonly kernelKinds = new Map<string, ResourceNeeds["kind"]>();

  private async kernelKind(kernelId: string): Promise<ResourceNeeds["kind"] | undefined> {
    const known = this.kernelKinds.get(kernelId);
    if (known) return known;
    const kernel = await this.store.getKernel(kernelId);
    if (!kernel) return undefined;
    if (this.kernelKinds.size >= 4096) this.kernelKinds.delete(this.kernelKinds.keys().next().value as string);
    this.kernelKinds.set(kernelId, kernel.kind);
    return kernel.kind;
  }

  async submit(req: SubmitRequest): Promise<JobRecord> {
    if (!this.accepting) throw shuttingDown("the scheduler is shutting down and takes no new jobs");
    // The same checks as a record read back from the submissions log (submit-validation.ts).
    checkKernelId(req.kernelId);
    const kind = await this.kernelKind(req.kernelId);
    if (!kind) throw notFound(`unknown kernel ${req.kernelId}: register it with RegisterKernel first`);
    const totalBytes = checkSubmitFields(req, this.config);
    const needs: ResourceNeeds = {
      cores: req.needs.cores ?? 0,
      memoryBytes: req.needs.memoryBytes ?? 0,
      gpu: req.needs.gpu ?? false,
      nodeSelector: req.needs.nodeSelector ?? {},
      kind,
      gpuFallback: req.gpuFallback ?? "GPU_FALLBACK_WAIT",
    };
    const noGpu = gpuRejection(needs, this.registry.ready());
    if (noGpu) throw failedPrecondition(noGpu);
    if (req.unschedulable === "UNSCHEDULABLE_FAIL") {
      const why = explainFeasibility(needs, this.registry.all().filter((n) => n.state !== "NODE_STATE_DOWN"));
      if (why.eligible === 0) throw failedPrecondition(`no node could ever take this job: ${why.reason}; not retryable until a node that fits joins (or submit with unschedulable=WAIT)`);
    }
    const id = req.jobId ?? `job-${randomUUID()}`;
    const rec: SubmissionRecord = {
      jobId: id,
      submittedAtMs: Date.now(),
      kernelId: req.kernelId,
      priority: req.priority,
      timeoutMs: req.timeoutMs,
      maxAttempts: req.maxAttempts,
      name: req.name,
      skipCache: req.skipCache ?? false,
      needs: { cores: needs.cores, memoryBytes: needs.memoryBytes, gpu: needs.gpu, nodeSelector: needs.nodeSelector, gpuFallback: needs.gpuFallback },
      inputs: req.inputs,
      ...(req.requestId ? { requestId: req.requestId, requestFingerprint: req.requestFingerprint ?? "" } : {}),
      ...(req.unschedulable === "UNSCHEDULABLE_FAIL" ? { unschedulable: req.unschedulable } : {}),
      ...(req.tenant ? { tenant: req.tenant } : {}),
      ...(req.tokenId ? { tokenId: req.tokenId } : {}),
    };
    const job = this.buildJob(rec, kind);
    this.admit?.(job);
    this.jobs.set(id, job);
    if (this.journal) {
      try {
        await this.journal(rec);
      } catch (err) {
        this.jobs.delete(id);
        throw backendError("could not write the submission durably", err);
      }
    }
    try {
      await this.accept(job, req.inputs);
    } catch (err) {
      // Not recorded: forget it here, so a retry (same request id, same job id) records it afresh
      // and a journaled copy can still be adopted; nothing waits on a job that will never run.
      if (job.tasks.every((t) => t.state === "TASK_STATE_PENDING")) this.jobs.delete(id);
      throw backendError("could not record the job", err);
    }
    this.log.info({ event: "job_submitted", jobId: id, tasks: job.tasks.length, kernelId: req.kernelId, bytes: totalBytes }, "job submitted");
    return job;
  }

  private buildJob(rec: SubmissionRecord, kind: ResourceNeeds["kind"]): JobRecord {
    return {
      id: rec.jobId,
      name: rec.name,
      kernelId: rec.kernelId,
      state: "JOB_STATE_PENDING",
      priority: rec.priority,
      timeoutMs: rec.timeoutMs || this.config.defaultTaskTimeoutMs,
      maxAttempts: rec.maxAttempts || this.config.defaultMaxAttempts,
      needs: { ...rec.needs, kind },
      submittedAtMs: rec.submittedAtMs,
      startedAtMs: 0,
      finishedAtMs: 0,
      retries: 0,
      counts: { ...emptyCounts(), TASK_STATE_PENDING: rec.inputs.length },
      tasks: rec.inputs.map((input, index) => ({
        index,
        state: "TASK_STATE_PENDING",
        attempt: 1,
        nodeId: "",
        input,
        runMs: 0,
        queuedAtMs: rec.submittedAtMs,
      })),
      ...(rec.skipCache ? { skipCache: true } : {}),
      ...(rec.requestId ? { requestId: rec.requestId, requestFingerprint: rec.requestFingerprint ?? "" } : {}),
      ...(rec.unschedulable ? { unschedulable: rec.unschedulable } : {}),
      ...(rec.tenant ? { tenant: rec.tenant } : {}),
      ...(rec.tokenId ? { tokenId: rec.tokenId } : {}),
      inputBytes: rec.inputs.reduce((s, b) => s + b.byteLength, 0),
    };
  }

  /** Records a new job (inputs and metadata at once), answers what the cache can, and queues the rest. */
  private async accept(job: JobRecord, inputs: Buffer[]): Promise<void> {
    try {
      await this.store.putJob(job.id, inputs, this.metaJson(job));
    } catch (err) {
      // Not recorded, so not ours: a job left in the table would never run and drain would wait on it.
      this.jobs.delete(job.id);
      throw backendError("could not record the job in the state store", err);
    }
    this.emit("job_submitted", job);
    await this.answerFromCache(job);
    if (!isTerminalJob(job.state)) {
      this.queue.pushJob(job.id, job.priority, job.tasks.filter((t) => t.state === "TASK_STATE_PENDING").map((t) => t.index));
      this.scheduleDispatch();
    }
  }

  private async answerFromCache(job: JobRecord): Promise<void> {
    if (!this.resultCache || job.skipCache) return;
    const pending = job.tasks.filter((t) => t.state === "TASK_STATE_PENDING" && t.input);
    // The cache only saves work: when it cannot be read, every task runs.
    const hits = await this.store.getCachedResults(pending.map((t) => resultCacheKey(job.kernelId, t.index + 1, t.input!))).catch((err: Error) => {
      this.log.warn({ event: "result_cache_unavailable", jobId: job.id, err: err.message }, "result cache unreadable; running every task");
      return [] as (Buffer | undefined)[];
    });
    for (let i = 0; i < pending.length; i++) {
      const output = hits[i];
      const task = pending[i]!;
      if (!output || task.state !== "TASK_STATE_PENDING") continue;
      this.counters.cacheHits++;
      this.emit("result_cache_hit", 1);
      await this.finishTask(job, task, { state: "TASK_STATE_SUCCEEDED", output, from: { nodeId: "result-cache", attempt: task.attempt, runMs: 0 } });
    }
  }

  /**
   * A submission read back from the durable log. Jobs this scheduler already holds, or that the
   * store already recorded, are skipped; anything else (accepted by a scheduler that died before
   * recording it) is recorded and queued now.
   */
  async adopt(rec: SubmissionRecord): Promise<void> {
    // Anyone who can write to the log must get no further than a SubmitJob call: a record that
    // fails SubmitJob's checks (or names an unknown kernel) is dropped and counted, never run.
    let kind: ResourceNeeds["kind"] | undefined;
    try {
      checkLoggedSubmission(rec, this.config);
      if (this.jobs.has(rec.jobId) || (await this.store.getJobMeta(rec.jobId)) !== undefined) return;
      kind = await this.kernelKind(rec.kernelId);
      if (!kind) throw notFound(`unknown kernel ${rec.kernelId}`);
    } catch (err) {
      if (!(err instanceof DistxError)) throw err; // the store failed: not consumed, retried
      this.emit("record_rejected", "submissions", rejectionReason(err));
      this.log.warn({ event: "submission_rejected", reason: rejectionReason(err), err: err.message }, "refused a submissions-log record");
      return;
    }
    const job = this.buildJob(rec, kind);
    this.jobs.set(job.id, job);
    try {
      await this.accept(job, rec.inputs);
    } catch (err) {
      // Not recorded: forget it, so the record's redelivery adopts it again rather than skipping it.
      if (job.tasks.every((t) => t.state === "TASK_STATE_PENDING")) this.jobs.delete(job.id);
      throw err;
    }
    this.log.info({ event: "job_adopted", jobId: job.id, tasks: job.tasks.length }, "job recovered from the submission log");
  }

  /** Loads every unfinished job from the store (at start, or when a standby takes over). */
  async restore(): Promise<number> {
    let restored = 0;
    for (const id of await this.store.unfinishedJobs()) {
      if (this.jobs.has(id)) continue;
      const [metaJson, inputs] = await Promise.all([this.store.getJobMeta(id), this.store.getJobInputs(id)]);
      if (!metaJson || !inputs) continue;
      const meta = JSON.parse(metaJson) as Omit<JobRecord, "tasks">;
      const done = new Map((await this.store.getResults(id, 0, inputs.length)).map((r) => [r.taskIndex, r]));
      const job: JobRecord = { ...meta, state: meta.startedAtMs ? "JOB_STATE_RUNNING" : "JOB_STATE_PENDING", counts: emptyCounts(), tasks: [] };
      for (let index = 0; index < inputs.length; index++) {
        const r = done.get(index);
        const task: TaskRecord = r
          ? { index, state: r.state, attempt: r.attempt, nodeId: r.nodeId, input: undefined, runMs: r.runMs, ...(r.error ? { error: r.error } : {}) }
          : { index, state: "TASK_STATE_PENDING", attempt: 1, nodeId: "", input: inputs[index], runMs: 0 };
        job.counts[task.state]++;
        job.tasks.push(task);
      }
      this.jobs.set(id, job);
      restored++;
      const c = job.counts;
      if (c.TASK_STATE_SUCCEEDED + c.TASK_STATE_FAILED + c.TASK_STATE_CANCELLED === job.tasks.length) {
        await this.completeIfDone(job);
      } else {
        this.queue.pushJob(id, job.priority, job.tasks.filter((t) => t.state === "TASK_STATE_PENDING").map((t) => t.index));
      }
      this.log.info({ event: "job_restored", jobId: id, tasks: job.tasks.length, done: done.size }, "resumed an unfinished job");
    }
    await this.restoreFinished();
    this.scheduleDispatch();
    return restored;
  }

  /**
   * Loads the newest finished jobs the store still keeps (up to retainFinishedJobs), so that a
   * scheduler taking over answers GetJob, GetResults and WatchJob for jobs that finished under
   * its predecessor, as that one would have. Their outputs stay in the store; only each task's
   * outcome is held, as for any retained job.
   */
  private async restoreFinished(): Promise<void> {
    const ids = await this.store.finishedJobs(this.config.retainFinishedJobs);
    const loaded: string[] = [];
    for (const id of ids) {
      if (this.jobs.has(id)) continue;
      const metaJson = await this.store.getJobMeta(id);
      if (!metaJson) continue; // expired
      const meta = JSON.parse(metaJson) as Omit<JobRecord, "tasks">;
      if (!isTerminalJob(meta.state)) continue; // the final snapshot was not stored: restore() finishes it
      const taskCount = Object.values(meta.counts).reduce((a, b) => a + b, 0);
      const tasks: TaskRecord[] = [];
      // Pages, so a large job's outputs are never all in memory at once.
      for (let offset = 0; offset < taskCount; offset += RESTORE_PAGE) {
        for (const r of await this.store.getResults(id, offset, RESTORE_PAGE)) {
          tasks[r.taskIndex] = { index: r.taskIndex, state: r.state, attempt: r.attempt, nodeId: r.nodeId, input: undefined, runMs: r.runMs, ...(r.error ? { error: r.error } : {}) };
        }
      }
      // A task with no stored result never ran to an outcome: the job ended (cancelled or failed fast) first.
      for (let index = 0; index < taskCount; index++) tasks[index] ??= { index, state: "TASK_STATE_CANCELLED", attempt: 0, nodeId: "", input: undefined, runMs: 0 };
      this.jobs.set(id, { ...meta, tasks });
      loaded.push(id);
    }
    // Oldest first, ahead of anything this scheduler finishes itself, so retention drops them first.
    this.finishedOrder.unshift(...loaded.reverse());
    if (loaded.length > 0) this.log.info({ event: "finished_jobs_restored", jobs: loaded.length }, `loaded ${loaded.length} finished job(s) from the store`);
  }

  /** With `visible`, a job it rejects is answered exactly as one that does not exist (another tenant's). */
  getJob(jobId: string, visible?: (job: JobRecord) => boolean): JobRecord {
    if (!/^job-[0-9a-f-]{36}$/.test(jobId)) throw invalidArgument(`job_id must look like job-<uuid>, got ${JSON.stringify(jobId.slice(0, 80))}`);
    const job = this.jobs.get(jobId);
    if (!job || (visible && !visible(job))) throw notFound(`no job ${jobId} (finished jobs are kept for the last ${this.config.retainFinishedJobs})`);
    return job;
  }

  /** The job, if this scheduler holds it (no validation, no error). */
  peekJob(jobId: string): JobRecord | undefined {
    return this.jobs.get(jobId);
  }

  /** Why the job's queued tasks cannot be placed on any live node ("" when some node could take them). */
  unschedulableReason(job: JobRecord): string {
    return unschedulableReason(job, this.registry.all());
  }

  listJobs(limit: number, visible?: (job: JobRecord) => boolean): JobRecord[] {
    return [...this.jobs.values()].filter((j) => !visible || visible(j)).sort((a, b) => b.submittedAtMs - a.submittedAtMs).slice(0, limit);
  }

  /** Jobs not finished yet (quotas and kernel deletion look at them). */
  *unfinishedJobs(): Iterable<JobRecord> {
    for (const j of this.jobs.values()) if (!isTerminalJob(j.state)) yield j;
  }

  activeJobs(): number {
    let n = 0;
    for (const j of this.jobs.values()) if (!isTerminalJob(j.state)) n++;
    return n;
  }

  async cancel(jobId: string): Promise<JobRecord> {
    const job = this.getJob(jobId);
    if (isTerminalJob(job.state)) {
      throw failedPrecondition(`job ${jobId} has already finished (${job.state.replace("JOB_STATE_", "").toLowerCase()}); there is nothing to cancel`);
    }
    this.queue.removeJob(jobId);
    const byNode = new Map<string, number[]>();
    for (const task of job.tasks) {
      if (isTerminalTask(task.state)) continue;
      if (task.nodeId && (task.state === "TASK_STATE_ASSIGNED" || task.state === "TASK_STATE_RUNNING")) {
        const list = byNode.get(task.nodeId) ?? [];
        list.push(task.index);
        byNode.set(task.nodeId, list);
        this.registry.removeTask(task.nodeId, taskKey(job, task), false);
      }
      await this.finishTask(job, task, { state: "TASK_STATE_CANCELLED", error: { code: "CANCELLED", message: "job cancelled" }, output: Buffer.alloc(0) });
    }
    for (const [nodeId, indexes] of byNode) {
      this.registry.get(nodeId)?.send?.({ cancel: { jobId, taskIndexes: indexes } });
    }
    this.log.info({ event: "job_cancelled", jobId, runningStopped: [...byNode.values()].reduce((s, l) => s + l.length, 0) }, "job cancelled");
    return job;
  }

  async results(jobId: string, offset: number, limit: number): Promise<StoredResult[]> {
    this.getJob(jobId);
    return this.store.getResults(jobId, offset, limit);
  }

  /** Ends the store-write retries (what is not stored by now is finished again after a restart). */
  close(): void {
    this.accepting = false;
    this.durable.stop();
  }

  /** Stop taking jobs, then wait for running ones to end (up to graceMs). */
  async drain(graceMs: number): Promise<boolean> {
    this.accepting = false;
    const deadline = Date.now() + graceMs;
    while (this.activeJobs() > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    return this.activeJobs() === 0;
  }

  // ───────────── agent events ─────────────

  async onTaskUpdate(nodeId: string, u: TaskUpdate): Promise<void> {
    const job = this.jobs.get(u.jobId);
    const task = job?.tasks[u.taskIndex];
    // A job that was cancelled and forgotten, garbage, or an update from a node never given this attempt.
    const rejected = !job || !task ? "unknown_task" : rejectUpdate(task, nodeId, u.attempt);
    if (rejected || !job || !task) {
      this.emit("update_rejected", rejected, nodeId);
      return;
    }
    // A result for this task is being stored: decide on this update once that is settled.
    for (let c = this.committing.get(task); c; c = this.committing.get(task)) await c.catch(() => undefined);
    const key = taskKey(job, task);
    const state = u.state as TaskStateName;
    if (state === "TASK_STATE_RUNNING") {
      if (task.attempt === u.attempt && task.nodeId === nodeId && task.state === "TASK_STATE_ASSIGNED") {
        this.setTaskState(job, task, "TASK_STATE_RUNNING");
        this.markStarted(job);
        this.emitTask(job, task);
      }
      return;
    }
    // Agents leave out RUNNING for a task that finished in the same turn: its final word is its start too.
    if (job.state === "JOB_STATE_PENDING" && !isTerminalTask(task.state)) this.markStarted(job);
    // Any final word from a node frees its slot for that task.
    this.registry.removeTask(nodeId, key, state === "TASK_STATE_SUCCEEDED");
    const wasTakingBack = task.nodeId === nodeId && this.takingBack.delete(key);
    if (state === "TASK_STATE_SUCCEEDED") this.placement.observeRun(key, job.kernelId, nodeId, u.runMs);
    if (isTerminalTask(task.state)) {
      if (state === "TASK_STATE_SUCCEEDED") {
        this.counters.duplicateResults++;
        this.log.debug({ event: "duplicate_result", jobId: job.id, task: task.index, nodeId }, "dropped a second result");
      }
      return;
    }
    if (state === "TASK_STATE_SUCCEEDED") {
      // The first result wins even if it comes from an earlier attempt whose node we had given up on.
      await this.finishTask(job, task, {
        state: "TASK_STATE_SUCCEEDED",
        output: u.output,
        from: { nodeId, attempt: u.attempt, runMs: u.runMs, ...(u.backend ? { backend: u.backend } : {}) },
      });
      return;
    }
    if (u.attempt !== task.attempt || task.nodeId !== nodeId) return; // stale failure of a superseded attempt
    if (state === "TASK_STATE_CANCELLED" && wasTakingBack) {
      // We asked for it back before it started: place it again, without using up an attempt.
      rememberHolder(task);
      task.nodeId = "";
      this.counters.migrations++;
      this.setTaskState(job, task, "TASK_STATE_PENDING");
      this.emitTask(job, task);
      this.queue.pushFront({ jobId: job.id, taskIndex: task.index });
      this.scheduleDispatch();
      return;
    }
    if (state === "TASK_STATE_CANCELLED") {
      // An agent only cancels what we asked it to, or when it shuts down: try elsewhere.
      await this.retryOrFail(job, task, { code: "AGENT_LOST", message: u.error?.message ?? "agent cancelled the task" });
      return;
    }
    const error: TaskErrorShape = { code: codeOf(u.error), message: u.error?.message || "task failed" };
    if (!isRetryable(error.code)) {
      await this.finishTask(job, task, { state: "TASK_STATE_FAILED", error, output: Buffer.alloc(0), from: { nodeId, attempt: u.attempt, runMs: u.runMs } });
    } else {
      await this.retryOrFail(job, task, error);
    }
  }

  private markStarted(job: JobRecord): void {
    if (!job.startedAtMs) job.startedAtMs = Date.now();
    if (job.state === "JOB_STATE_PENDING") this.setJobState(job, "JOB_STATE_RUNNING");
  }

  /** The registry has released the node's tasks (`released`): each unfinished one is queued again. */
  private async onNodeDown(node: NodeEntry, reason: string, released: readonly string[]): Promise<void> {
    this.log.warn({ event: "node_down", nodeId: node.id, reason, tasks: released.length }, "node down; re-placing its tasks");
    this.emit("node_down", node);
    for (const key of released) {
      const slash = key.lastIndexOf("/");
      const job = this.jobs.get(key.slice(0, slash));
      const task = job?.tasks[Number(key.slice(slash + 1))];
      this.takingBack.delete(key);
      // A task whose result is being stored is not lost with the node: its result is in hand.
      if (!job || !task || isTerminalTask(task.state) || task.nodeId !== node.id || this.committing.has(task)) continue;
      await this.retryOrFail(job, task, { code: "AGENT_LOST", message: `node ${node.id} was lost: ${reason}` });
    }
  }

  private async retryOrFail(job: JobRecord, task: TaskRecord, error: TaskErrorShape): Promise<void> {
    if (task.attempt >= job.maxAttempts) {
      await this.finishTask(job, task, { state: "TASK_STATE_FAILED", error: { code: error.code, message: `${error.message} (after ${task.attempt} attempts)` }, output: Buffer.alloc(0) });
      return;
    }
    rememberHolder(task);
    task.attempt++;
    task.nodeId = "";
    job.retries++;
    this.counters.retries++;
    this.setTaskState(job, task, "TASK_STATE_PENDING");
    task.queuedAtMs = Date.now();
    this.emit("task_retry", job, task, error);
    this.emitTask(job, task, error);
    this.queue.pushFront({ jobId: job.id, taskIndex: task.index });
    this.scheduleDispatch();
  }

  // ───────────── dispatch ─────────────

  scheduleDispatch(): void {
    if (this.dispatchScheduled) return;
    this.dispatchScheduled = true;
    setImmediate(() => {
      this.dispatchScheduled = false;
      this.dispatch();
    });
  }

  private dispatch(): void {
    const ready = this.registry.ready();
    if (ready.length === 0) return;
    // Upper bound on what can be placed now; the strategy decides which nodes (and may place fewer).
    let room = ready.reduce((s, n) => s + Math.max(0, n.capacity - n.assigned), 0);
    for (const jobId of this.queue.jobs()) {
      const job = this.jobs.get(jobId);
      if (!job || isTerminalJob(job.state)) {
        this.queue.removeJob(jobId);
        continue;
      }
      if (room === 0) return;
      // Tasks of a job are placed as one batch; what does not fit goes back to the queue's front, in order.
      const indexes = this.takePending(job, room);
      const nodes = this.placement.placeBatch({ kernelId: job.kernelId, needs: placementNeeds(job.needs, ready) }, indexes.map((i) => taskKey(job, job.tasks[i]!)));
      for (let k = indexes.length - 1; k >= nodes.length; k--) this.queue.pushFront({ jobId, taskIndex: indexes[k]! });
      for (let k = 0; k < nodes.length; k++) {
        const node = nodes[k]!;
        node.assigned--; // placeBatch counted it; addTask in assign() counts it for real
        this.assign(job, job.tasks[indexes[k]!]!, node);
        room--;
      }
    }
  }

  /**
   * Up to `max` queued tasks of a job that still wait for placement. Queue entries of tasks that
   * ended meanwhile (a late result from an agent given up on, or one recorded before a restart)
   * are dropped without using up the round: otherwise a round that took only such entries would
   * place nothing, and with nothing running no later event would start another round.
   */
  private takePending(job: JobRecord, max: number): number[] {
    const out: number[] = [];
    while (out.length < max) {
      const taken = this.queue.take(job.id, max - out.length);
      if (taken.length === 0) break;
      for (const i of taken) {
        const task = job.tasks[i];
        // A late result being stored for a re-queued task: placing it again would only run it twice.
        if (task?.state === "TASK_STATE_PENDING" && !this.committing.has(task)) out.push(i);
      }
    }
    return out;
  }

  /** Tasks placed on `node` that have not started there, oldest first. */
  private queuedOn(node: NodeEntry): { key: string; req: { kernelId: string; needs: ResourceNeeds } }[] {
    const out: { key: string; req: { kernelId: string; needs: ResourceNeeds } }[] = [];
    for (const key of node.tasks) {
      if (this.takingBack.has(key)) continue;
      const slash = key.lastIndexOf("/");
      const job = this.jobs.get(key.slice(0, slash));
      const task = job?.tasks[Number(key.slice(slash + 1))];
      if (job && task && task.state === "TASK_STATE_ASSIGNED" && task.nodeId === node.id) out.push({ key, req: { kernelId: job.kernelId, needs: job.needs } });
    }
    return out;
  }

  /**
   * Asks a node to give back tasks it has not started. The agent answers CANCELLED for each
   * (then they are queued again without using an attempt), or a result if one had already
   * started and finished (first result wins, as always).
   */
  private takeBack(node: NodeEntry, keys: string[], reason: string): void {
    const byJob = new Map<string, number[]>();
    for (const key of keys) {
      const slash = key.lastIndexOf("/");
      const jobId = key.slice(0, slash);
      this.takingBack.add(key);
      const list = byJob.get(jobId) ?? [];
      list.push(Number(key.slice(slash + 1)));
      byJob.set(jobId, list);
    }
    for (const [jobId, taskIndexes] of byJob) node.send?.({ cancel: { jobId, taskIndexes } });
    this.log.info({ event: "tasks_taken_back", nodeId: node.id, tasks: keys.length, reason }, "moving queued tasks off a node that is behind");
  }

  private assign(job: JobRecord, task: TaskRecord, node: NodeEntry): void {
    task.nodeId = node.id;
    this.registry.addTask(node, taskKey(job, task));
    this.setTaskState(job, task, "TASK_STATE_ASSIGNED");
    this.counters.placements++;
    this.emit("placement", job, task, node);
    node.send?.({
      assign: {
        jobId: job.id,
        taskIndex: task.index,
        attempt: task.attempt,
        kernelId: job.kernelId,
        kind: job.needs.kind,
        input: task.input,
        timeoutMs: job.timeoutMs,
        memoryLimitBytes: String(job.needs.memoryBytes),
      },
    });
    this.emitTask(job, task);
  }

  // ───────────── state bookkeeping ─────────────

  private setTaskState(job: JobRecord, task: TaskRecord, state: TaskStateName): void {
    job.counts[task.state]--;
    task.state = state;
    job.counts[state]++;
  }

  /**
   * Ends a task: its result is written to the store first (retried until it is stored), and only
   * then does its state change in memory, in one synchronous step together with its event and,
   * if it was the last, the job's final state. So a result is never reported without being kept,
   * and a watcher always sees every task's outcome before the job's final snapshot. Returns false
   * when the task had already ended (the outcome is dropped).
   */
  private async finishTask(job: JobRecord, task: TaskRecord, outcome: FinalOutcome): Promise<boolean> {
    for (let c = this.committing.get(task); c; c = this.committing.get(task)) await c.catch(() => undefined);
    if (isTerminalTask(task.state)) {
      if (outcome.state === "TASK_STATE_SUCCEEDED") this.counters.duplicateResults++;
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
    if (!recorded) this.counters.duplicateResults++;
    // ── from here to the end, synchronous: the task's outcome, then (if last) the job's. ──
    const { state, error, output, from } = outcome;
    if (from) {
      const current = task.nodeId;
      if (current && current !== from.nodeId && current !== "result-cache") {
        // The first result wins; the attempt running elsewhere is no longer needed.
        this.registry.removeTask(current, taskKey(job, task), false);
        this.registry.get(current)?.send?.({ cancel: { jobId: job.id, taskIndexes: [task.index] } });
      }
      task.nodeId = from.nodeId;
      task.attempt = from.attempt;
      task.runMs = from.runMs;
      if (from.backend) task.backend = from.backend;
    }
    const cacheKey =
      state === "TASK_STATE_SUCCEEDED" && recorded && this.resultCache && !job.skipCache && task.input && task.nodeId !== "result-cache"
        ? resultCacheKey(job.kernelId, task.index + 1, task.input)
        : undefined;
    this.setTaskState(job, task, state);
    task.input = undefined;
    if (error) {
      task.error = error;
      if (!job.firstError && state === "TASK_STATE_FAILED") job.firstError = error;
    }
    if (state === "TASK_STATE_SUCCEEDED") this.counters.tasksSucceeded++;
    if (state === "TASK_STATE_FAILED") this.counters.tasksFailed++;
    this.emitTask(job, task, error);
    this.emit("task_finished", job, task);
    const completed = this.completeIfDone(job);
    // The cache only saves work later: a failed write is logged, not retried.
    if (cacheKey) {
      await this.store.putCachedResult(cacheKey, output).catch((err: Error) =>
        this.log.warn({ event: "result_cache_write_failed", jobId: job.id, task: task.index, err: err.message }, "could not cache a result"),
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
      ...(outcome.error ? { error: outcome.error } : {}),
      nodeId: from?.nodeId ?? task.nodeId,
      attempt: from?.attempt ?? task.attempt,
      runMs: from?.runMs ?? task.runMs,
      ...((from?.backend ?? task.backend) ? { backend: (from?.backend ?? task.backend)! } : {}),
    };
    return this.durable.run("a task result", { jobId: job.id, task: task.index }, () => this.store.recordResult(job.id, result));
  }

  private completeIfDone(job: JobRecord): Promise<void> {
    const c = job.counts;
    if (c.TASK_STATE_SUCCEEDED + c.TASK_STATE_FAILED + c.TASK_STATE_CANCELLED !== job.tasks.length || isTerminalJob(job.state)) return Promise.resolve();
    const final = c.TASK_STATE_CANCELLED > 0 ? "JOB_STATE_CANCELLED" : c.TASK_STATE_FAILED > 0 ? "JOB_STATE_FAILED" : "JOB_STATE_SUCCEEDED";
    job.finishedAtMs = Date.now();
    this.setJobState(job, final);
    this.queue.removeJob(job.id);
    this.log.info(
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
    try {
      await this.durable.run("a finished job", { jobId: job.id }, async () => {
        await this.persist(job);
        await this.store.markJobFinished(job.id);
      });
    } catch (err) {
      this.log.warn({ event: "job_final_state_unstored", jobId: job.id, err: (err as Error).message }, "stopping before the job's final state was stored; it is restored and finished again on restart");
    }
    this.retire(job);
  }

  private setJobState(job: JobRecord, state: JobRecord["state"]): void {
    job.state = state;
    this.emit(`job:${job.id}`, { jobId: job.id, atMs: Date.now(), job: toJobProto(job) } satisfies JobEventIn);
    this.emit("job_state", job);
  }

  private emitTask(job: JobRecord, task: TaskRecord, error?: TaskErrorShape): void {
    if (this.listenerCount(`job:${job.id}`) === 0) return;
    this.emit(`job:${job.id}`, {
      jobId: job.id,
      atMs: Date.now(),
      task: { taskIndex: task.index, state: task.state, attempt: task.attempt, nodeId: task.nodeId, error: error ? taskErrorProto(error) : null, runMs: task.runMs },
    } satisfies JobEventIn);
  }

  private async persist(job: JobRecord): Promise<void> {
    await this.store.putJobMeta(job.id, this.metaJson(job));
  }

  private metaJson(job: JobRecord): string {
    const { tasks: _tasks, ...meta } = job;
    return JSON.stringify(meta);
  }

  private retire(job: JobRecord): void {
    this.finishedOrder.push(job.id);
    while (this.finishedOrder.length > this.config.retainFinishedJobs) {
      const old = this.finishedOrder.shift()!;
      this.jobs.delete(old);
      void this.store.deleteJob(old);
    }
  }
}

export function toJobProto(job: JobRecord): JobIn {
  const c = job.counts;
  return {
    jobId: job.id,
    name: job.name,
    kernelId: job.kernelId,
    tenant: job.tenant ?? "default",
    state: job.state,
    taskCount: job.tasks.length,
    counts: {
      pending: c.TASK_STATE_PENDING,
      assigned: c.TASK_STATE_ASSIGNED,
      running: c.TASK_STATE_RUNNING,
      succeeded: c.TASK_STATE_SUCCEEDED,
      failed: c.TASK_STATE_FAILED,
      cancelled: c.TASK_STATE_CANCELLED,
    },
    priority: job.priority,
    submittedAtMs: job.submittedAtMs,
    startedAtMs: job.startedAtMs,
    finishedAtMs: job.finishedAtMs,
    retries: job.retries,
    firstError: job.firstError ? taskErrorProto(job.firstError) : null,
  };
}
