// The order and grouping of one WatchJob stream's live events, before they reach its outbox.
// A stream sends one message per event-loop turn (each write waits for the previous one's
// callback), and over TLS each message is a record of its own, so fewer messages is less latency.
import { Coalescer } from "../../common/coalescer.js";
import type { JobEventIn, TaskEventIn } from "../../common/types.js";
import { isTerminalJob, isTerminalTask } from "../model.js";

export interface WatchSink {
  write(ev: JobEventIn): void;
  /** Whether the watcher was dropped (nothing more is sent). */
  readonly isDropped: boolean;
}

/**
 * - Final-only watches get the outcomes of one turn as one message.
 * - A job snapshot that a later one of the same turn supersedes is not sent: a task that starts
 *   and ends in one agent message (job RUNNING, the task's outcome, job SUCCEEDED) costs one
 *   message less.
 * - Order is kept: a snapshot never overtakes the outcomes before it, nor a task event an
 *   earlier snapshot.
 */
export class WatchEventSender {
  private readonly outcomes: Coalescer<TaskEventIn>;
  private pendingSnapshot: JobEventIn | undefined;

  constructor(
    private readonly jobId: string,
    private readonly finalOnly: boolean,
    private readonly sink: WatchSink,
    /** Called after the job's final snapshot was written: end the stream. */
    private readonly onFinal: () => void,
  ) {
    this.outcomes = new Coalescer<TaskEventIn>((items) => sink.write({ jobId: this.jobId, atMs: Date.now(), tasks: { items } }));
  }

  send(ev: JobEventIn): void {
    if (this.finalOnly && ev.task) {
      if (isTerminalTask(ev.task.state as never)) this.outcomes.push(ev.task);
      return;
    }
    if (ev.job && !isTerminalJob(ev.job.state as never)) {
      this.outcomes.flush();
      const scheduled = this.pendingSnapshot !== undefined;
      this.pendingSnapshot = ev;
      if (!scheduled) setImmediate(() => this.writeSnapshot());
      return;
    }
    if (ev.job) this.pendingSnapshot = undefined; // the final snapshot supersedes a pending one
    else this.writeSnapshot();
    this.outcomes.flush();
    this.sink.write(ev);
    if (this.sink.isDropped) return;
    if (ev.job) this.onFinal();
  }

  /** The stream is gone: nothing pending is sent. */
  stop(): void {
    this.outcomes.clear();
    this.pendingSnapshot = undefined;
  }

  private writeSnapshot(): void {
    const ev = this.pendingSnapshot;
    this.pendingSnapshot = undefined;
    if (ev) this.sink.write(ev);
  }
}
