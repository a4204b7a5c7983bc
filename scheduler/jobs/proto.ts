// Mappings from the core's in-memory job records to wire shapes (proto/) and to the job
// metadata the state store keeps.
import { taskErrorProto } from "../../common/task-errors.js";
import type { JobEventIn, JobIn } from "../../common/types.js";
import type { JobRecord, TaskErrorShape, TaskRecord } from "../model.js";

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

/** A task's state change as WatchJob streams it. */
export function toTaskEvent(job: JobRecord, task: TaskRecord, error?: TaskErrorShape): JobEventIn {
  return {
    jobId: job.id,
    atMs: Date.now(),
    task: { taskIndex: task.index, state: task.state, attempt: task.attempt, nodeId: task.nodeId, error: error ? taskErrorProto(error) : null, runMs: task.runMs },
  };
}

/** The job's metadata as the store keeps it: everything but the tasks (their results are stored one by one). */
export function jobMetaJson(job: JobRecord): string {
  const { tasks: _tasks, ...meta } = job;
  return JSON.stringify(meta);
}
