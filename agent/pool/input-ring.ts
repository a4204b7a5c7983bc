// Where small task inputs wait for their worker: one SharedArrayBuffer per worker, used as a ring.
// A small input used to travel in a fresh buffer per message (packed, transferred): at 32 KiB
// per task that is 32 KiB of new external memory per task on both threads (V8 scavenges for
// every 32 MiB of it), page faults and a zero fill. The ring is reused: the pool copies the input
// in, the worker reads it where it is (as it does a blob fetched into shared memory) and copies
// it into the kernel's memory, and the region is free again once the worker's reply is in.

/** A region of the ring held by one task, from post until its reply (or its worker is gone). */
export interface RingRegion {
  start: number;
  end: number;
  freed: boolean;
}

/** Enough for the deepest pipeline of inputs of ~32 KiB; what does not fit goes the old way (packed). */
export const INPUT_RING_BYTES = 2 * 1024 * 1024;

/**
 * V8 copies into and out of shared memory with relaxed atomics, word by word only when source
 * and destination agree modulo 8, else byte by byte: 16-28 µs per 32 KiB against 2-4 (measured
 * here). Regions start at multiples of 8 (as the kernel's allocator places the input, so the
 * worker's copy out is word-wise too), and an input that does not sit at one goes through this
 * aligned scratch buffer first (a plain memmove, ~1 µs per 32 KiB).
 */
const ALIGN = 8;
let scratch = new Uint8Array(0);

function alignedView(input: Uint8Array): Uint8Array {
  if ((input.byteOffset & (ALIGN - 1)) === 0) return input;
  if (scratch.byteLength < input.byteLength) scratch = new Uint8Array(Math.max(input.byteLength, 64 * 1024));
  const view = scratch.subarray(0, input.byteLength);
  view.set(input);
  return view;
}

const alignUp = (at: number) => (at + ALIGN - 1) & ~(ALIGN - 1);

export class InputRing {
  private shared?: SharedArrayBuffer;
  private bytes?: Uint8Array;
  /** Regions in use, oldest first (the worker answers in order, so they are freed from the front). */
  private readonly regions: RingRegion[] = [];

  constructor(private readonly size = INPUT_RING_BYTES) {}

  get buffer(): SharedArrayBuffer | undefined {
    return this.shared;
  }

  /** Copies `input` into a free region and returns it; undefined when it does not fit now. */
  put(input: Uint8Array): RingRegion | undefined {
    const n = input.byteLength;
    if (n === 0 || n > this.size) return undefined;
    const start = this.place(n);
    if (start === undefined) return undefined;
    if (!this.shared) {
      this.shared = new SharedArrayBuffer(this.size);
      this.bytes = new Uint8Array(this.shared);
    }
    this.bytes!.set(alignedView(input), start);
    const region = { start, end: start + n, freed: false };
    this.regions.push(region);
    return region;
  }

  /** The worker is done with the region (its reply came, or the task left this worker). */
  release(region: RingRegion): void {
    region.freed = true;
    while (this.regions.length > 0 && this.regions[0]!.freed) this.regions.shift();
  }

  /** Where n bytes fit (at a multiple of ALIGN): after the newest region, else (wrapping) before the oldest. */
  private place(n: number): number | undefined {
    const oldest = this.regions[0];
    if (!oldest) return 0;
    const head = oldest.start;
    const tail = alignUp(this.regions[this.regions.length - 1]!.end);
    if (tail > head) {
      if (this.size - tail >= n) return tail;
      return head >= n ? 0 : undefined;
    }
    // Wrapped: the free space lies between the newest region's end and the oldest's start.
    return head - tail >= n ? tail : undefined;
  }
}
