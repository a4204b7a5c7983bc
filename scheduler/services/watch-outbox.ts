// A WatchJob stream's outbox, bounded in bytes: events written and not yet taken by HTTP/2 are
// counted, and a watcher that lets more than WATCH_OUTBOX_BYTES pile up is told it fell behind
// and dropped, so a reader that never reads cannot grow the scheduler.
import * as grpc from "@grpc/grpc-js";
import type { JobEventIn } from "../../common/types.js";

/** What may wait for one watcher before it counts as fallen behind (~1,600 task events). */
export const WATCH_OUTBOX_BYTES = 256 * 1024;

/**
 * What an event holds while it waits: a JS object in the stream's buffer (a task event with its
 * nested objects takes ~160 bytes of heap, several times its ~20 encoded bytes), or its encoding.
 */
function eventBytes(ev: JobEventIn): number {
  const tasks = ev.tasks?.items ?? (ev.task ? [ev.task] : []);
  let n = ev.job ? 1024 : 160;
  for (const t of tasks) n += 160 + (t.error ? 2 * JSON.stringify(t.error).length : 0);
  return n;
}

export class WatchOutbox {
  private waitingBytes = 0;
  private dropped = false;

  constructor(
    private readonly call: grpc.ServerWritableStream<unknown, JobEventIn>,
    private readonly onDrop: () => void,
  ) {}

  /** Whether this watcher was dropped for falling behind (nothing more is sent). */
  get isDropped(): boolean {
    return this.dropped;
  }

  /**
   * Writes an event. `live` events (after the snapshot and the replay, which are bounded by the
   * job's size) first check the outbox: one over its bound drops the watcher instead. A single
   * event larger than the bound still goes when the outbox is empty.
   */
  write(ev: JobEventIn, live = true): void {
    if (this.dropped) return;
    if (live && this.waitingBytes > WATCH_OUTBOX_BYTES) return this.drop();
    const size = eventBytes(ev);
    this.waitingBytes += size;
    this.call.write(ev, () => {
      this.waitingBytes -= size;
    });
  }

  private drop(): void {
    this.dropped = true;
    this.onDrop();
    this.call.emit("error", {
      code: grpc.status.RESOURCE_EXHAUSTED,
      details: `this watch fell behind (over ${WATCH_OUTBOX_BYTES} bytes of events waited for it) and was dropped; safe to retry: watch again with resume and seen_outcomes to continue where it was (the typed client does)`,
    });
  }
}
