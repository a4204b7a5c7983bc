// What the parts of the core (submission, recovery, task states, task updates, dispatch) share:
// the backends, the job table (their one owner of jobs), the counters and the event sinks.
// Each part also gets the few methods of the others it calls, as a narrow interface of its own.
import type { EventEmitter } from "node:events";
import type { SchedulerConfig } from "../../common/config.js";
import type { Logger } from "../../common/logger.js";
import type { StateStore, TaskQueue } from "../backends/types.js";
import type { SubmissionRecord } from "../backends/bus.js";
import type { JobRecord } from "../model.js";
import type { NodeRegistry } from "../registry.js";
import type { CoreEvents, JobWatchers } from "./events.js";
import type { JobTable } from "./job-table.js";

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

export const newCounters = (): SchedulerCounters => ({
  placements: 0,
  retries: 0,
  duplicateResults: 0,
  tasksSucceeded: 0,
  tasksFailed: 0,
  cacheHits: 0,
  storeWriteFailures: 0,
  migrations: 0,
});

/** Settings the scheduler (and the quotas) set on the core after building it. */
export interface CoreSettings {
  /** Set with a durable queue: a submission is written here before the client gets its job id. */
  journal?: (rec: SubmissionRecord) => Promise<void>;
  /** Whether identical tasks may be answered from the store's result cache. */
  resultCache: boolean;
  /** Admission check of a new job before it is recorded (per-tenant quotas); throws to refuse. Synchronous, so it cannot race. */
  admit?: (job: JobRecord) => void;
}

export interface CoreContext {
  readonly config: SchedulerConfig;
  readonly registry: NodeRegistry;
  readonly store: StateStore;
  readonly queue: TaskQueue;
  readonly log: Logger;
  readonly table: JobTable;
  readonly counters: SchedulerCounters;
  readonly settings: CoreSettings;
  readonly events: Pick<EventEmitter<CoreEvents>, "emit">;
  readonly watchers: JobWatchers;
}

/** Starts a dispatch round soon (coalesced): every part that queues a task calls it. */
export type WakeDispatch = () => void;
