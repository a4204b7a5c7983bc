// The scheduler's core, as one facade over its parts (scheduler/jobs/): gRPC handlers
// (services/) and the scheduler call into it. It wires the parts together and answers queries;
// the work is theirs:
//   jobs/job-table.ts    the one owner of the jobs held in memory, and their retention;
//   jobs/submission.ts   submit and adopt: checks, job building, journaling, result cache;
//   jobs/recovery.ts     restore of unfinished and finished jobs from the store (takeover);
//   jobs/task-states.ts  the task and job state machine's writer, store-outcome ordering;
//   jobs/task-updates.ts agents' task updates, node loss, cancel;
//   jobs/dispatch.ts     the dispatch loop and taking back tasks a node has not started;
//   jobs/proto.ts        wire mappings; jobs/events.ts the typed events.
//
// Guarantees:
//   * at-least-once execution: a task placed on an agent that dies is queued again;
//   * its result is recorded once: the first final update wins, later ones are counted and dropped.
import { EventEmitter } from "node:events";
import type { SchedulerConfig } from "../common/config.js";
import type { Logger } from "../common/logger.js";
import { invalidArgument, notFound } from "../common/errors.js";
import type { TaskUpdate } from "../common/types.js";
import type { StateStore, StoredResult, TaskQueue } from "./backends/types.js";
import type { SubmissionRecord } from "./backends/bus.js";
import type { JobRecord } from "./model.js";
import { unschedulableReason } from "./placement/feasibility.js";
import { PlacementController, type ForecastAccuracyEntry } from "./placement/controller.js";
import type { NodeRegistry } from "./registry.js";
import { DurableWrites, type StoreWriteFailure } from "./store-writes.js";
import { newCounters, type CoreContext, type CoreSettings, type SchedulerCounters } from "./jobs/context.js";
import { Dispatcher } from "./jobs/dispatch.js";
import { JobWatchers, type CoreEvents, type JobListener } from "./jobs/events.js";
import { JobTable } from "./jobs/job-table.js";
import { Recovery } from "./jobs/recovery.js";
import { Submissions, type SubmitRequest } from "./jobs/submission.js";
import { TaskStates } from "./jobs/task-states.js";
import { TaskUpdates } from "./jobs/task-updates.js";

export { toJobProto } from "./jobs/proto.js";
export type { SubmitRequest } from "./jobs/submission.js";
export type { SchedulerCounters } from "./jobs/context.js";
export type { CoreEvents } from "./jobs/events.js";

export class SchedulerCore extends EventEmitter<CoreEvents> {
  readonly counters: SchedulerCounters = newCounters();
  readonly placement: PlacementController;
  private readonly settings: CoreSettings = { resultCache: true };
  private readonly table: JobTable;
  private readonly watchers = new JobWatchers();
  private readonly durable: DurableWrites;
  private readonly submissions: Submissions;
  private readonly recovery: Recovery;
  private readonly states: TaskStates;
  private readonly updates: TaskUpdates;
  private readonly dispatcher: Dispatcher;
  /** Whether SubmitJob takes new jobs; the Scheduler points it at its lifecycle (always yes for a bare core). */
  acceptsJobs: () => boolean = () => true;

  constructor(
    private readonly config: SchedulerConfig,
    readonly registry: NodeRegistry,
    readonly store: StateStore,
    queue: TaskQueue,
    private readonly log: Logger,
  ) {
    super();
    this.setMaxListeners(0);
    this.table = new JobTable(config.retainFinishedJobs);
    const ctx: CoreContext = { config, registry, store, queue, log, table: this.table, counters: this.counters, settings: this.settings, events: this, watchers: this.watchers };
    this.durable = new DurableWrites(log, (f: StoreWriteFailure) => {
      this.counters.storeWriteFailures++;
      this.emit("store_write_failed", f);
    });
    const wake = () => this.dispatcher.schedule();
    this.states = new TaskStates(ctx, this.durable, wake);
    this.dispatcher = new Dispatcher(ctx, this.states, () => this.placement);
    this.updates = new TaskUpdates(ctx, this.states, this.dispatcher, (key, kernelId, nodeId, runMs) => this.placement.observeRun(key, kernelId, nodeId, runMs));
    this.submissions = new Submissions(ctx, this.states, wake, () => this.acceptsJobs());
    this.recovery = new Recovery(ctx, this.states, wake);
    registry.on("ready", wake);
    registry.on("capacity", wake);
    registry.on("task_released", wake);
    registry.on("down", (node, reason, released) => {
      this.updates.onNodeDown(node, reason, released).catch((err: Error) => this.log.error({ event: "node_down_failed", nodeId: node.id, err: err.message }, "could not re-place a lost node's tasks"));
    });
    registry.on("recovered", (node, downForMs) => {
      this.log.info({ event: "node_recovered", nodeId: node.id, downForMs }, "node answers again; taking new work");
      this.emit("node_recovered", node);
    });
    registry.on("draining", (node) => this.log.info({ event: "node_draining", nodeId: node.id }, "node draining"));
    registry.on("backing_off", (node, reason) => this.log.info({ event: "node_backing_off", nodeId: node.id, reason }, "node backs off for its host's own load; placing around it"));
    this.placement = new PlacementController(config, registry, {
      saturation: (e) => {
        this.log.warn({ event: "predicted_saturation", ...e }, `${e.scope === "node" ? `node ${e.nodeId}` : "cluster"} predicted to saturate in ${e.etaMs} ms`);
        this.emit("predicted_saturation", e);
      },
      saturationWithdrawn: (e) => {
        this.log.info({ event: "saturation_withdrawn", ...e }, `${e.scope === "node" ? `node ${e.nodeId}` : "cluster"} no longer predicted to saturate`);
        this.emit("saturation_withdrawn", e);
      },
      queuedOn: (node) => this.dispatcher.queuedOn(node),
      takeBack: (node, keys, reason) => this.dispatcher.takeBack(node, keys, reason),
    });
  }

  // ───────────── settings ─────────────

  /** Set with a durable queue: a submission is written here before the client gets its job id. */
  get journal(): CoreSettings["journal"] {
    return this.settings.journal;
  }
  set journal(fn: CoreSettings["journal"]) {
    this.settings.journal = fn;
  }

  /** Whether identical tasks may be answered from the store's result cache. */
  get resultCache(): boolean {
    return this.settings.resultCache;
  }
  set resultCache(on: boolean) {
    this.settings.resultCache = on;
  }

  /** Admission check of a new job before it is recorded (per-tenant quotas); throws to refuse. Synchronous, so it cannot race. */
  get admit(): CoreSettings["admit"] {
    return this.settings.admit;
  }
  set admit(fn: CoreSettings["admit"]) {
    this.settings.admit = fn;
  }

  /** Online forecast accuracy per node and metric (ratio < 1 beats the last-value forecast). */
  forecastAccuracy(): ForecastAccuracyEntry[] {
    return this.placement.accuracy();
  }

  // ───────────── jobs in and out ─────────────

  submit(req: SubmitRequest): Promise<JobRecord> {
    return this.submissions.submit(req);
  }

  /** A submission read back from the durable log (see Submissions.adopt). */
  adopt(rec: SubmissionRecord): Promise<void> {
    return this.submissions.adopt(rec);
  }

  /** Loads every unfinished job from the store (at start, or when a standby takes over). */
  restore(): Promise<number> {
    return this.recovery.restore();
  }

  /** At start (or takeover): the finished jobs the store still keeps, so they stay answerable. */
  restoreFinished(): Promise<void> {
    return this.recovery.restoreFinished();
  }

  async cancel(jobId: string): Promise<JobRecord> {
    return this.updates.cancel(this.getJob(jobId));
  }

  onTaskUpdate(nodeId: string, u: TaskUpdate): Promise<void> {
    return this.updates.onTaskUpdate(nodeId, u);
  }

  scheduleDispatch(): void {
    this.dispatcher.schedule();
  }

  /** Relays the job's events (task states, job snapshots) to `listener`; returns the function that stops it. */
  watchJob(jobId: string, listener: JobListener): () => void {
    return this.watchers.watch(jobId, listener);
  }

  // ───────────── queries ─────────────

  /** With `visible`, a job it rejects is answered exactly as one that does not exist (another tenant's). */
  getJob(jobId: string, visible?: (job: JobRecord) => boolean): JobRecord {
    if (!/^job-[0-9a-f-]{36}$/.test(jobId)) throw invalidArgument(`job_id must look like job-<uuid>, got ${JSON.stringify(jobId.slice(0, 80))}`);
    const job = this.table.get(jobId);
    if (!job || (visible && !visible(job))) throw notFound(`no job ${jobId} (finished jobs are kept for the last ${this.config.retainFinishedJobs})`);
    return job;
  }

  /** The job, if this scheduler holds it (no validation, no error). */
  peekJob(jobId: string): JobRecord | undefined {
    return this.table.get(jobId);
  }

  /** Why the job's queued tasks cannot be placed on any live node ("" when some node could take them). */
  unschedulableReason(job: JobRecord): string {
    return unschedulableReason(job, this.registry.all());
  }

  listJobs(limit: number, visible?: (job: JobRecord) => boolean): JobRecord[] {
    return [...this.table.values()].filter((j) => !visible || visible(j)).sort((a, b) => b.submittedAtMs - a.submittedAtMs).slice(0, limit);
  }

  /** Jobs not finished yet (quotas and kernel deletion look at them). */
  unfinishedJobs(): Iterable<JobRecord> {
    return this.table.unfinished();
  }

  /** Every job the scheduler keeps, finished ones too (the outputBytes quota counts them). */
  allJobs(): Iterable<JobRecord> {
    return this.table.values();
  }

  activeJobs(): number {
    return this.table.unfinishedCount();
  }

  async results(jobId: string, offset: number, limit: number): Promise<StoredResult[]> {
    this.getJob(jobId);
    return this.store.getResults(jobId, offset, limit);
  }

  // ───────────── stopping ─────────────

  /** Ends the store-write retries (what is not stored by now is finished again after a restart). */
  close(): void {
    this.durable.stop();
  }

  /** Waits for running jobs to end (up to graceMs); the caller stops new jobs first (acceptsJobs). */
  async drain(graceMs: number): Promise<boolean> {
    const deadline = Date.now() + graceMs;
    while (this.activeJobs() > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    return this.activeJobs() === 0;
  }
}
