// Output buffers kept for reuse between kernel tasks. runWasmKernel copies a task's output out of
// linear memory into an ArrayBuffer of its own (one the caller can transfer); a fresh one faults
// in every page on that copy, which costs several times the copy itself (bench/results/kernels.md:
// 2.1 ms for 4 MiB on the bench VM). A caller done with an output gives it back here and the next
// output of exactly that size is copied into it. Kernels never see these buffers (they are host
// memory, written only by the copy out of linear memory, which overwrites every byte), so reuse
// cannot carry one task's bytes into another task's kernel; and an output is handed out only
// with exactly its own length, so nothing of an earlier output is in it either.
//
// The agent's worker pool keeps one on the main thread (agent/pool/worker-pool.ts): an output
// comes back to it once the scheduler has it (task-runner.ts), and goes to a worker, transferred
// with a later task of its kernel, to be that task's output. A buffer is thus in one thread's
// hands at a time, and transfer detaches every view the last owner kept. Every buffer given back
// is marked as rewritten for sha256Once (common/hash.ts): no digest of an old view is reused.
import { markRewritten } from "../../common/hash.js";

export interface OutputPoolOptions {
  /** Most buffers kept in all. Default 8. */
  maxCount?: number;
  /** Most bytes kept in all. Default 64 MiB. */
  maxTotalBytes?: number;
  /** Smallest buffer worth keeping: below it a fresh one is as cheap as a lookup. Default 64 KiB. */
  minBytes?: number;
  /**
   * Debugging (tests, DISTX_POISON_RELEASED_OUTPUTS=1): fill every buffer given back with this
   * byte, so that anything still reading an output after it was given back reads poison, never
   * a plausible result.
   */
  poison?: number;
}

/** The poison byte the environment asks for (DISTX_POISON_RELEASED_OUTPUTS=1), else none. */
export const poisonFromEnv = (): number | undefined => (process.env.DISTX_POISON_RELEASED_OUTPUTS === "1" ? 0xdb : undefined);

export class OutputPool {
  /** By exact byte length; each list oldest first. */
  private readonly kept = new Map<number, ArrayBuffer[]>();
  /** Every kept buffer, oldest first (what goes when a newer one needs the room). */
  private order: ArrayBuffer[] = [];
  private keptBytes = 0;
  readonly maxCount: number;
  readonly maxTotalBytes: number;
  readonly minBytes: number;
  readonly poison?: number;
  /** Buffers handed out again instead of allocated. */
  reused = 0;
  /** Buffers allocated because none of that length was kept. */
  created = 0;

  constructor(options: OutputPoolOptions = {}) {
    this.maxCount = bound("maxCount", options.maxCount ?? 8);
    this.maxTotalBytes = bound("maxTotalBytes", options.maxTotalBytes ?? 64 * 2 ** 20);
    this.minBytes = bound("minBytes", options.minBytes ?? 64 * 1024);
    if (options.poison !== undefined) this.poison = options.poison;
  }

  get size(): number {
    return this.order.length;
  }

  get bytes(): number {
    return this.keptBytes;
  }

  /** An ArrayBuffer of exactly `length` bytes whose contents the caller overwrites whole: a kept one, else a new one. */
  take(length: number): ArrayBuffer {
    const kept = this.takeKept(length);
    if (kept) return kept;
    this.created++;
    return new ArrayBuffer(length);
  }

  /** A kept buffer of exactly `length` bytes (no longer kept once returned), or undefined when none is. */
  takeKept(length: number): ArrayBuffer | undefined {
    const list = this.kept.get(length);
    const buffer = list?.pop();
    if (!buffer) return undefined;
    if (list!.length === 0) this.kept.delete(length);
    this.order.splice(this.order.indexOf(buffer), 1);
    this.keptBytes -= length;
    this.reused++;
    return buffer;
  }

  /**
   * Takes back an output the caller no longer reads (nor anything it passed it to). A detached
   * buffer (transferred elsewhere), one too small or too big to keep, or one kept already is ignored.
   */
  give(buffer: ArrayBuffer): void {
    const length = buffer.byteLength;
    if (length === 0 || this.kept.get(length)?.includes(buffer)) return;
    markRewritten(buffer);
    // Poisoned whether kept or not: a reader after the give-back sees it either way.
    if (this.poison !== undefined) new Uint8Array(buffer).fill(this.poison);
    if (length < this.minBytes || length > this.maxTotalBytes || this.maxCount === 0) return;
    while (this.order.length >= this.maxCount || this.keptBytes + length > this.maxTotalBytes) {
      const old = this.order.shift()!;
      const list = this.kept.get(old.byteLength)!;
      list.splice(list.indexOf(old), 1);
      if (list.length === 0) this.kept.delete(old.byteLength);
      this.keptBytes -= old.byteLength;
    }
    const list = this.kept.get(length);
    if (list) list.push(buffer);
    else this.kept.set(length, [buffer]);
    this.order.push(buffer);
    this.keptBytes += length;
  }
}

function bound(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`OutputPool ${name} must be a non-negative integer, got ${value}`);
  return value;
}
