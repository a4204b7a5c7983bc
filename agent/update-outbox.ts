// Task updates on their way to the scheduler. The updates of one event-loop turn go as one
// message; a task's RUNNING note waits RUNNING_NOTE_DELAY_MS first, and is dropped when the
// task's final update overtakes it, so a tiny task costs one update on the wire, not two.
import { Coalescer } from "../common/coalescer.js";
import type { TaskUpdateIn } from "../common/types.js";

/**
 * How long a task's RUNNING note waits before it is sent. A task that ends by then needs none (its
 * final update says it started), so a tiny task costs one update, not two, and its result does
 * not queue behind the produce request of its own RUNNING note.
 */
export const RUNNING_NOTE_DELAY_MS = 5;

/**
 * A task that started and finished within one turn needs no RUNNING on the wire: its final
 * update says more (the scheduler treats a final update as the start too). For tiny tasks this
 * halves what travels back.
 */
export function dropSupersededRunning(items: TaskUpdateIn[]): TaskUpdateIn[] {
  // Most batches hold no RUNNING at all (notes wait RUNNING_NOTE_DELAY_MS): then there is nothing to drop.
  if (items.length < 2 || !items.some((u) => u.state === "TASK_STATE_RUNNING")) return items;
  const finals = new Set<string>();
  for (const u of items) if (u.state !== "TASK_STATE_RUNNING") finals.add(`${u.jobId}/${u.taskIndex}/${u.attempt}`);
  if (finals.size === 0) return items;
  return items.filter((u) => u.state !== "TASK_STATE_RUNNING" || !finals.has(`${u.jobId}/${u.taskIndex}/${u.attempt}`));
}

/**
 * What to count once a final update's fate is known: delivered as it is, or replaced by a
 * failure (a result the broker refused for good fails OUTPUT_TOO_LARGE), so a task counts as
 * succeeded only when the scheduler records it so.
 */
export interface UpdateReceipt {
  delivered(): void;
  failed(code: string): void;
}

/**
 * The outbox. `task` is any object standing for one attempt on this agent (the runner's entry):
 * a RUNNING note waiting for it is dropped by its final update, or by `forget`.
 */
export class UpdateOutbox {
  /** RUNNING notes not sent yet (see RUNNING_NOTE_DELAY_MS), by task, and the timer that sends them. */
  private readonly runningNotes = new Map<object, TaskUpdateIn>();
  private runningNotesTimer?: NodeJS.Timeout;
  private readonly updates: Coalescer<TaskUpdateIn>;
  /** Receipts of updates handed over whose fate is not known yet (weak: a closing link may never tell). */
  private readonly receipts = new WeakMap<TaskUpdateIn, UpdateReceipt>();
  /**
   * What to call once the link holds an update's bytes no more (its output's buffer is then
   * recycled: PoolResult.release). Weak: an update dropped unsent (a lost session) is never
   * released, and its buffer is simply collected — never recycled while something may read it.
   */
  private readonly holds = new WeakMap<TaskUpdateIn, () => void>();

  /**
   * `deliver` gets each turn's batch, less the RUNNING notes their own final update made moot,
   * and returns whether word of their fate follows (delivered / replaced); if not, they count
   * as delivered once handed over.
   */
  constructor(deliver: (items: TaskUpdateIn[]) => boolean) {
    this.updates = new Coalescer<TaskUpdateIn>((batch) => {
      const items = dropSupersededRunning(batch);
      if (!deliver(items)) this.counted(items);
    });
  }

  /** These updates reached the scheduler as they are (Kafka: the broker acknowledged them; the link holds them no more). */
  delivered(updates: readonly TaskUpdateIn[]): void {
    this.counted(updates);
    this.released(updates);
  }

  /**
   * The link holds these updates no more: encoded and written (the session), acknowledged or
   * replaced (Kafka: until then a refused record is encoded again from them), or dropped.
   */
  released(updates: readonly TaskUpdateIn[]): void {
    for (const u of updates) {
      const release = this.holds.get(u);
      if (!release) continue;
      this.holds.delete(u);
      release();
    }
  }

  private counted(updates: readonly TaskUpdateIn[]): void {
    for (const u of updates) {
      const receipt = this.receipts.get(u);
      if (!receipt) continue;
      this.receipts.delete(u);
      receipt.delivered();
    }
  }

  /** These updates were refused; the scheduler got `instead` (one for one, in order). */
  replaced(updates: readonly TaskUpdateIn[], instead: readonly TaskUpdateIn[]): void {
    updates.forEach((u, i) => {
      const receipt = this.receipts.get(u);
      if (!receipt) return;
      this.receipts.delete(u);
      const sent = instead[i];
      if (!sent || sent.state === "TASK_STATE_SUCCEEDED") receipt.delivered();
      else receipt.failed(sent.error?.code || "INTERNAL");
    });
    this.released(updates);
  }

  /** Queues a RUNNING note; the ones still waiting after RUNNING_NOTE_DELAY_MS go out together. */
  noteRunning(task: object, note: TaskUpdateIn): void {
    this.runningNotes.set(task, note);
    this.runningNotesTimer ??= setTimeout(() => this.sendRunningNotes(), RUNNING_NOTE_DELAY_MS);
  }

  /**
   * A final update: it makes a RUNNING note still waiting for the same task moot. `release` is
   * called once the link holds the update no more (see released()).
   */
  send(task: object, update: TaskUpdateIn, receipt?: UpdateReceipt, release?: () => void): void {
    this.runningNotes.delete(task);
    if (receipt) this.receipts.set(update, receipt);
    if (release) this.holds.set(update, release);
    this.updates.push(update);
  }

  /** The task is over here: a RUNNING note still waiting for it is not sent. */
  forget(task: object): void {
    this.runningNotes.delete(task);
  }

  /** Sends what this turn queued now (a heartbeat never overtakes the updates before it). */
  flush(): void {
    this.updates.flush();
  }

  /** At stop: the RUNNING notes still waiting go too, then everything queued. */
  flushAll(): void {
    clearTimeout(this.runningNotesTimer);
    this.sendRunningNotes();
    this.updates.flush();
  }

  /** Drops what is queued (its destination, the session, is gone). */
  clear(): void {
    this.updates.clear();
  }

  private sendRunningNotes(): void {
    this.runningNotesTimer = undefined;
    for (const note of this.runningNotes.values()) this.updates.push(note);
    this.runningNotes.clear();
  }
}
