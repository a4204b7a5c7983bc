// Linear memories kept for reuse between kernel tasks, by size class. A fresh Memory costs little
// to create but every page of it faults on first touch (bench/results/kernels.md: ~24 ms for the
// 12 MiB a 4 MiB saxpy needs, against 0.17 ms of kernel): a warm memory of the right size saves
// all of that. Grown memories come back too (their grown size is the point: the next task of that
// kernel needs no memory.grow). Bounded by count and by bytes; each kept memory is zeroed whole
// when it comes back (or, deferZeroing, before it is handed out again), so the next task cannot
// see anything of the last one (see release()).
import { WASM_PAGE_BYTES } from "../../common/kernel-abi.js";

export interface MemoryPoolOptions {
  /** Most memories kept in all. Default 8 (each one also reserves a large range of address space). */
  maxCount?: number;
  /** Most bytes kept in all (the sum of the kept memories' sizes). Default 256 MiB. */
  maxTotalBytes?: number;
  /** A memory bigger than this is never kept. Default 128 MiB. */
  maxBytes?: number;
  /**
   * Keep a given-back memory dirty and zero it later: in scrub() (a worker calls it once its
   * replies are posted, while it waits for the next message) or, at the latest, in acquire()
   * before anything else sees it. Default false: zeroed in release().
   */
  deferZeroing?: boolean;
}

interface Kept {
  memory: WebAssembly.Memory;
  maximumPages: number;
  pages: number;
  /** Not zeroed since its last task: acquire() and scrub() zero it. */
  dirty: boolean;
}

/** floor(log2(pages)): memories of class c have 2^c to 2^(c+1)-1 pages. */
export const sizeClass = (pages: number): number => 31 - Math.clz32(Math.max(1, pages));

/**
 * Zeroed linear memories kept for reuse. acquire(initial, maximum) hands out a kept memory with
 * the same maximum (the cap is part of what a kernel sees) and at least `initial` pages, from the
 * request's size class or the next one up (so a small task never gets, and later zeroes, a memory
 * far bigger than it asked for); else a new one. The kernel may thus start with more pages than it
 * asked for — never fewer, never a different cap — and with every byte zero, as a fresh one.
 */
export class MemoryPool {
  /** Oldest first: the oldest go when a newer one needs the room. */
  private kept: Kept[] = [];
  private keptBytes = 0;
  readonly maxCount: number;
  readonly maxTotalBytes: number;
  readonly maxBytes: number;
  private readonly deferZeroing: boolean;
  private dirtyCount = 0;
  /** Memories handed out again instead of allocated. */
  reused = 0;
  /** Memories allocated because none of the right shape was kept. */
  created = 0;
  /** Memories given back but not kept (too big, or no room), or dropped to make room. */
  dropped = 0;

  constructor(options: MemoryPoolOptions = {}) {
    this.maxCount = bound("maxCount", options.maxCount ?? 8);
    this.maxTotalBytes = bound("maxTotalBytes", options.maxTotalBytes ?? 256 * 2 ** 20);
    this.maxBytes = bound("maxBytes", options.maxBytes ?? 128 * 2 ** 20);
    this.deferZeroing = options.deferZeroing ?? false;
  }

  /** How many kept memories still hold their last task's bytes (deferZeroing only). */
  get dirty(): number {
    return this.dirtyCount;
  }

  /** Zeroes every kept memory that is still dirty; returns how many it zeroed. */
  scrub(): number {
    if (this.dirtyCount === 0) return 0;
    let n = 0;
    for (const k of this.kept) if (k.dirty) this.clean(k), n++;
    return n;
  }

  private clean(k: Kept): void {
    new Uint8Array(k.memory.buffer).fill(0);
    k.dirty = false;
    this.dirtyCount--;
  }

  private drop(k: Kept): void {
    this.keptBytes -= k.pages * WASM_PAGE_BYTES;
    if (k.dirty) this.dirtyCount--;
  }

  /** How many memories are kept now. */
  get size(): number {
    return this.kept.length;
  }

  /** How many bytes the kept memories hold now. */
  get bytes(): number {
    return this.keptBytes;
  }

  acquire(initialPages: number, maximumPages: number): WebAssembly.Memory {
    const top = sizeClass(initialPages) + 1;
    let best = -1;
    for (let i = 0; i < this.kept.length; i++) {
      const k = this.kept[i]!;
      if (k.maximumPages !== maximumPages || k.pages < initialPages || sizeClass(k.pages) > top) continue;
      if (best < 0 || k.pages < this.kept[best]!.pages) best = i;
    }
    if (best >= 0) {
      const k = this.kept[best]!;
      if (k.dirty) this.clean(k);
      this.kept.splice(best, 1);
      this.drop(k);
      this.reused++;
      return k.memory;
    }
    this.created++;
    return new WebAssembly.Memory({ initial: initialPages, maximum: maximumPages });
  }

  /**
   * Takes back a memory a task is done with (whatever happened to the task, traps included). It
   * is kept only if it fits the bounds, and zeroed whole (now, or with deferZeroing before it is
   * handed out again): the bytes and the size are all the state a Memory has, instantiation
   * re-initialises the module's globals and data segments, and the kernel could have written
   * anywhere below its size (a bump allocator's top bounds nothing a hostile kernel does), so
   * nothing less than all of it can be trusted to be clean.
   */
  release(memory: WebAssembly.Memory, maximumPages: number): void {
    const bytes = memory.buffer.byteLength;
    if (bytes > this.maxBytes || bytes > this.maxTotalBytes || this.maxCount === 0) {
      this.dropped++;
      return;
    }
    while (this.kept.length >= this.maxCount || this.keptBytes + bytes > this.maxTotalBytes) {
      this.drop(this.kept.shift()!);
      this.dropped++;
    }
    const k: Kept = { memory, maximumPages, pages: bytes / WASM_PAGE_BYTES, dirty: true };
    this.kept.push(k);
    this.keptBytes += bytes;
    this.dirtyCount++;
    if (!this.deferZeroing) this.clean(k);
  }
}

function bound(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`MemoryPool ${name} must be a non-negative integer, got ${value}`);
  return value;
}
