// Recovery at start or takeover: the unfinished jobs the store holds are loaded and queued
// again (their stored results kept), and the newest finished ones loaded for queries.
import { emptyCounts, isTerminalJob, type JobRecord, type TaskRecord } from "../model.js";
import type { CoreContext, WakeDispatch } from "./context.js";
import type { TaskStates } from "./task-states.js";

/** Results read per store call when loading a finished job. */
const RESTORE_PAGE = 1000;
/** Finished jobs loaded at once at a takeover. */
const RESTORE_CONCURRENCY = 32;

export class Recovery {
  constructor(
    private readonly ctx: CoreContext,
    private readonly states: Pick<TaskStates, "completeIfDone">,
    private readonly wakeDispatch: WakeDispatch,
  ) {}

  /** Loads every unfinished job from the store (at start, or when a standby takes over). */
  async restore(): Promise<number> {
    const { store, table, queue, log } = this.ctx;
    let restored = 0;
    for (const id of await store.unfinishedJobs()) {
      if (table.has(id)) continue;
      const [metaJson, inputs, refs] = await Promise.all([store.getJobMeta(id), store.getJobInputs(id), store.getJobInputRefs(id)]);
      if (!metaJson || !inputs) continue;
      const meta = JSON.parse(metaJson) as Omit<JobRecord, "tasks">;
      const done = new Map((await store.getResults(id, 0, inputs.length)).map((r) => [r.taskIndex, r]));
      const job: JobRecord = { ...meta, state: meta.startedAtMs ? "JOB_STATE_RUNNING" : "JOB_STATE_PENDING", counts: emptyCounts(), tasks: [] };
      for (let index = 0; index < inputs.length; index++) {
        const r = done.get(index);
        const task: TaskRecord = r
          ? { index, state: r.state, attempt: r.attempt, nodeId: r.nodeId, input: undefined, runMs: r.runMs, ...(r.error ? { error: r.error } : {}) }
          : refs?.[index]
            ? { index, state: "TASK_STATE_PENDING", attempt: 1, nodeId: "", input: undefined, inputRef: refs[index]!, runMs: 0 }
            : { index, state: "TASK_STATE_PENDING", attempt: 1, nodeId: "", input: inputs[index], runMs: 0 };
        job.counts[task.state]++;
        job.tasks.push(task);
      }
      table.add(job);
      restored++;
      const c = job.counts;
      if (c.TASK_STATE_SUCCEEDED + c.TASK_STATE_FAILED + c.TASK_STATE_CANCELLED === job.tasks.length) {
        await this.states.completeIfDone(job);
      } else {
        queue.pushJob(id, job.priority, job.tasks.filter((t) => t.state === "TASK_STATE_PENDING").map((t) => t.index));
      }
      log.info({ event: "job_restored", jobId: id, tasks: job.tasks.length, done: done.size }, "resumed an unfinished job");
    }
    this.wakeDispatch();
    return restored;
  }

  /**
   * Loads the newest finished jobs the store still keeps (up to retainFinishedJobs), so that a
   * scheduler taking over answers GetJob, GetResults and WatchJob for jobs that finished under
   * its predecessor, as that one would have. Their outputs stay in the store; only each task's
   * outcome is held, as for any retained job. Once, at start: restore() also runs when a
   * retried SubmitJob finds its job only in the store, and that needs none of this.
   */
  async restoreFinished(): Promise<void> {
    const { store, table, config } = this.ctx;
    const ids = (await store.finishedJobs(config.retainFinishedJobs)).filter((id) => !table.has(id));
    const load = async (id: string): Promise<JobRecord | undefined> => {
      const metaJson = await store.getJobMeta(id);
      if (!metaJson) return undefined; // expired
      const meta = JSON.parse(metaJson) as Omit<JobRecord, "tasks">;
      if (!isTerminalJob(meta.state)) return undefined; // the final snapshot was not stored: restore() finishes it
      const taskCount = Object.values(meta.counts).reduce((a, b) => a + b, 0);
      const tasks: TaskRecord[] = [];
      // Pages, so a large job's outputs are never all in memory at once.
      for (let offset = 0; offset < taskCount; offset += RESTORE_PAGE) {
        for (const r of await store.getResults(id, offset, RESTORE_PAGE)) {
          tasks[r.taskIndex] = { index: r.taskIndex, state: r.state, attempt: r.attempt, nodeId: r.nodeId, input: undefined, runMs: r.runMs, ...(r.error ? { error: r.error } : {}) };
        }
      }
      // A task with no stored result never ran to an outcome: the job ended (cancelled or failed fast) first.
      for (let index = 0; index < taskCount; index++) tasks[index] ??= { index, state: "TASK_STATE_CANCELLED", attempt: 0, nodeId: "", input: undefined, runMs: 0 };
      return { ...meta, tasks };
    };
    // A few jobs at a time: a takeover waits for this, and one job after another cost a store
    // round trip or two each (seconds for a thousand jobs); all at once would hold every page.
    const loaded: string[] = [];
    for (let i = 0; i < ids.length; i += RESTORE_CONCURRENCY) {
      const chunk = ids.slice(i, i + RESTORE_CONCURRENCY);
      const jobs = await Promise.all(chunk.map(load));
      jobs.forEach((job, k) => {
        if (!job || table.has(chunk[k]!)) return;
        table.add(job);
        loaded.push(chunk[k]!);
      });
    }
    table.prependFinished(loaded);
    if (loaded.length > 0) this.ctx.log.info({ event: "finished_jobs_restored", jobs: loaded.length }, `loaded ${loaded.length} finished job(s) from the store`);
  }
}
