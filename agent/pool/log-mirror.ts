// The log of the task a worker is running, mirrored into memory the worker shares with the pool.
// A worker stopped by a timeout (or lost to a crash) is terminated mid-call, and its replies with
// it; the lines its task logged before that are still here, so the author of a kernel that hangs
// after logging sees them (the same reason a trap keeps its lines).
import { dropMarker, MAX_KERNEL_LOG_BYTES, MAX_KERNEL_LOG_LINES, type KernelLogSink } from "../../common/kernel-log.js";

/** Header words: [0] task id (0: none), [1] bytes used, [2] lines dropped, [3] bytes dropped. */
const HEADER_BYTES = 16;
/** Kept lines joined by "\n" (sanitised lines hold none): the most any cap keeps, plus separators. */
const TEXT_BYTES = MAX_KERNEL_LOG_BYTES + MAX_KERNEL_LOG_LINES;

export class LogMirror implements KernelLogSink {
  private readonly head: Int32Array;
  private readonly text: Uint8Array;
  private readonly encoder = new TextEncoder();

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(HEADER_BYTES + TEXT_BYTES)) {
    this.head = new Int32Array(buffer, 0, 4);
    this.text = new Uint8Array(buffer, HEADER_BYTES);
  }

  /** Worker side: task `id` starts; the mirror is empty. */
  begin(id: number): void {
    Atomics.store(this.head, 1, 0);
    Atomics.store(this.head, 2, 0);
    Atomics.store(this.head, 3, 0);
    Atomics.store(this.head, 0, id);
  }

  /** Worker side: a line the task's KernelLog kept. The bytes first, then the length that publishes them. */
  kept(line: string): void {
    const used = Atomics.load(this.head, 1);
    const sep = used > 0 ? 1 : 0;
    if (used + sep >= this.text.length) return;
    if (sep) this.text[used] = 0x0a;
    const { written } = this.encoder.encodeInto(line, this.text.subarray(used + sep));
    Atomics.store(this.head, 1, used + sep + written);
  }

  /** Worker side: the task's KernelLog dropped lines past its cap (totals so far). */
  dropped(lines: number, bytes: number): void {
    Atomics.store(this.head, 2, lines);
    Atomics.store(this.head, 3, Math.min(bytes, 0x7fffffff));
  }

  /** Pool side: what task `id` logged so far, with the cap's marker, or undefined when the mirror holds another task's. */
  read(id: number, cap: { maxBytes: number; maxLines: number }): string[] | undefined {
    if (Atomics.load(this.head, 0) !== id) return undefined;
    const used = Atomics.load(this.head, 1);
    const droppedLines = Atomics.load(this.head, 2);
    const droppedBytes = Atomics.load(this.head, 3);
    const text = Buffer.from(this.text.slice(0, used)).toString("utf8");
    // The worker moved on while this was read: the text may be another task's.
    if (Atomics.load(this.head, 0) !== id) return undefined;
    const lines = used > 0 ? text.split("\n") : [];
    if (droppedLines > 0 || droppedBytes > 0) lines.push(dropMarker(cap.maxBytes, cap.maxLines, droppedLines, droppedBytes));
    return lines;
  }
}
