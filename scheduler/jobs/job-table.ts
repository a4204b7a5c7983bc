// The one owner of the scheduler's jobs: the table of jobs held in memory (unfinished, and the
// last `retainFinishedJobs` finished ones) and the order in which finished ones are dropped.
// Other parts of the core read jobs through it and add or retire them only through its methods.
import { isTerminalJob, parseTaskKey, type JobRecord, type TaskRecord } from "../model.js";

export class JobTable {
  private readonly jobs = new Map<string, JobRecord>();
  /** Finished jobs, oldest first: retention drops from the front. */
  private readonly finishedOrder: string[] = [];

  constructor(private readonly retainFinished: number) {}

  get(jobId: string): JobRecord | undefined {
    return this.jobs.get(jobId);
  }

  has(jobId: string): boolean {
    return this.jobs.has(jobId);
  }

  add(job: JobRecord): void {
    this.jobs.set(job.id, job);
  }

  /** Forgets a job that was never recorded (its store write failed). */
  forget(jobId: string): void {
    this.jobs.delete(jobId);
  }

  /** The job and task a task key ("job id/index") names, if still held. */
  task(key: string): { job: JobRecord; task: TaskRecord } | undefined {
    const { jobId, taskIndex } = parseTaskKey(key);
    const job = this.jobs.get(jobId);
    const task = job?.tasks[taskIndex];
    return job && task ? { job, task } : undefined;
  }

  values(): IterableIterator<JobRecord> {
    return this.jobs.values();
  }

  *unfinished(): Iterable<JobRecord> {
    for (const j of this.jobs.values()) if (!isTerminalJob(j.state)) yield j;
  }

  unfinishedCount(): number {
    let n = 0;
    for (const j of this.jobs.values()) if (!isTerminalJob(j.state)) n++;
    return n;
  }

  /**
   * A job finished: it is kept for queries until `retainFinished` newer ones have finished.
   * Returns the ids of jobs dropped to make room (the caller deletes them from the store).
   */
  retire(job: JobRecord): string[] {
    this.finishedOrder.push(job.id);
    const dropped: string[] = [];
    while (this.finishedOrder.length > this.retainFinished) {
      const old = this.finishedOrder.shift()!;
      this.jobs.delete(old);
      dropped.push(old);
    }
    return dropped;
  }

  /**
   * Finished jobs loaded from the store at takeover (newest first, already added): they go ahead
   * of anything this scheduler finishes itself, so retention drops them first.
   */
  prependFinished(newestFirst: readonly string[]): void {
    this.finishedOrder.unshift(...[...newestFirst].reverse());
  }
}
