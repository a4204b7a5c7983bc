// The core's events, typed: an interface of event name → listener arguments (as BullMQ's
// listener maps and the registry's RegistryEvents), so a listener cannot get them wrong.
// A job's own stream (what WatchJob relays) is not a string-named event per job but
// JobWatchers below: typed, and a job nobody watches costs nothing to update.
import type { JobEventIn } from "../../common/types.js";
import type { RejectReason } from "../update-guard.js";
import type { JobRecord, TaskErrorShape, TaskRecord } from "../model.js";
import type { NodeEntry } from "../registry.js";
import type { PredictedSaturation, SaturationWithdrawn } from "../placement/controller.js";
import type { StoreWriteFailure } from "../store-writes.js";

export interface CoreEvents {
  /** A job was recorded (submitted, or adopted from the submissions log). */
  job_submitted: [job: JobRecord];
  /** A job's state changed (started, or finished). */
  job_state: [job: JobRecord];
  /** A task was sent to a node. */
  placement: [job: JobRecord, task: TaskRecord, node: NodeEntry];
  /** A task failed retryably (or its node was lost) and is queued again. */
  task_retry: [job: JobRecord, task: TaskRecord, error: TaskErrorShape];
  /** A task ended (succeeded, failed or cancelled), its result already stored. */
  task_finished: [job: JobRecord, task: TaskRecord];
  /** Tasks answered from the result cache without running. */
  result_cache_hit: [count: number];
  node_down: [node: NodeEntry];
  node_recovered: [node: NodeEntry];
  predicted_saturation: [event: PredictedSaturation];
  /** A raised prediction no longer holds (its forecast fell below the threshold). */
  saturation_withdrawn: [event: SaturationWithdrawn];
  /** A Kafka record dropped instead of used: its topic, and the reason (a status name, or undecodable…). */
  record_rejected: [topic: string, reason: string];
  /** A task update not applied: from a node not holding that attempt, or for an unknown task. */
  update_rejected: [reason: RejectReason, nodeId: string];
  /** One failed attempt to write a result or a job's final state (it is retried). */
  store_write_failed: [failure: StoreWriteFailure];
  /** A WatchJob or RunJob stream dropped for falling behind (its reader did not read; the typed client resumes). */
  watch_dropped: [rpc: "WatchJob" | "RunJob"];
}

export type JobListener = (event: JobEventIn) => void;

/** Per-job listeners (WatchJob streams): each job's events reach only that job's watchers. */
export class JobWatchers {
  private readonly byJob = new Map<string, Set<JobListener>>();

  /** Starts relaying the job's events to `listener`; returns the function that stops it. */
  watch(jobId: string, listener: JobListener): () => void {
    let set = this.byJob.get(jobId);
    if (!set) this.byJob.set(jobId, (set = new Set()));
    set.add(listener);
    return () => {
      const current = this.byJob.get(jobId);
      if (!current?.delete(listener)) return;
      if (current.size === 0) this.byJob.delete(jobId);
    };
  }

  /** Whether anyone watches the job (so an event need not be built when nobody does). */
  watched(jobId: string): boolean {
    return this.byJob.has(jobId);
  }

  publish(jobId: string, event: JobEventIn): void {
    const set = this.byJob.get(jobId);
    if (!set) return;
    // A copy: a listener that stops watching (the job ended) must not disturb this loop.
    for (const listener of [...set]) listener(event);
  }
}
