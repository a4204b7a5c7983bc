// Blobs this agent fetched from the scheduler (inputs by reference, shared inputs), kept by
// sha256 so that tasks reading the same bytes fetch them once. Bounded in bytes: a blob in use
// by a task is pinned; once none uses it, it stays until room is needed, least recently used
// first. Each blob lives in a SharedArrayBuffer, so kernel workers read it without a copy.
// Fresh shared memory costs a page fault per 4 KiB on first write (a fresh 1 MiB takes ~10× as
// long to fill as a reused one), so a fetch reuses the memory of a blob of the same size that no
// task has used for RECYCLE_IDLE_MS, instead of keeping that blob until the bound forces it out.
import { markRewritten } from "../common/hash.js";

export interface BlobRefLike {
  sha256: string;
  sizeBytes: string | number;
}

/** The task that needs a blob: the scheduler lets only the node holding it read the blob. */
export interface BlobUse {
  jobId: string;
  taskIndex: number;
}

/** Fetches the whole blob into `into` (exactly its size), checking its hash; throws on any failure. */
export type BlobFetcher = (ref: { sha256: string; sizeBytes: number }, into: Uint8Array, use: BlobUse) => Promise<void>;

interface Entry {
  data: Uint8Array;
  pins: number;
  /** When the last pin went (clock ms); a blob idle this long may give its memory to a fetch. */
  idleSince: number;
}

/** How long a blob stays unused before a fetch of the same size may take its memory. */
export const RECYCLE_IDLE_MS = 1000;
/** How many of the least recently used blobs a fetch looks at for memory to reuse. */
const RECYCLE_SCAN = 32;

export interface BlobCacheStats {
  /** Blobs fetched from the scheduler. */
  fetches: number;
  fetchedBytes: number;
  /** Acquisitions answered from the cache (or by a fetch already under way). */
  hits: number;
  /** Fetches that reused the memory of an idle blob (dropped from the cache for it). */
  recycled: number;
  /** Bytes held now, pinned or not. */
  bytes: number;
  entries: number;
}

export class BlobCache {
  /** Insertion order is recency: a use moves the entry to the end. */
  private readonly entries = new Map<string, Entry>();
  private readonly fetching = new Map<string, Promise<Entry>>();
  private heldBytes = 0;
  readonly stats = { fetches: 0, fetchedBytes: 0, hits: 0, recycled: 0 };

  constructor(
    private readonly maxBytes: number,
    private readonly fetcher: BlobFetcher,
    private readonly now: () => number = () => performance.now(),
  ) {}

  snapshot(): BlobCacheStats {
    return { ...this.stats, bytes: this.heldBytes, entries: this.entries.size };
  }

  /** The blob's bytes, pinned until release(sha256) is called once for this acquire. */
  async acquire(ref: BlobRefLike, use: BlobUse): Promise<Uint8Array> {
    const sha = ref.sha256;
    const held = this.entries.get(sha);
    if (held) {
      this.stats.hits++;
      held.pins++;
      this.entries.delete(sha);
      this.entries.set(sha, held);
      return held.data;
    }
    let pending = this.fetching.get(sha);
    if (pending) this.stats.hits++;
    else {
      pending = this.fetch(sha, Number(ref.sizeBytes), use);
      this.fetching.set(sha, pending);
      pending.then(
        () => this.fetching.delete(sha),
        () => this.fetching.delete(sha),
      );
    }
    const entry = await pending;
    entry.pins++;
    return entry.data;
  }

  release(sha256: string): void {
    const entry = this.entries.get(sha256);
    if (!entry) return;
    entry.pins = Math.max(0, entry.pins - 1);
    if (entry.pins === 0) entry.idleSince = this.now();
    this.evict();
  }

  private async fetch(sha256: string, size: number, use: BlobUse): Promise<Entry> {
    const data = this.reusable(size) ?? new Uint8Array(new SharedArrayBuffer(size));
    await this.fetcher({ sha256, sizeBytes: size }, data, use);
    this.stats.fetches++;
    this.stats.fetchedBytes += size;
    const entry: Entry = { data, pins: 0, idleSince: this.now() };
    this.entries.set(sha256, entry);
    this.heldBytes += size;
    this.evict();
    return entry;
  }

  /**
   * The memory of an idle blob of exactly `size` bytes, dropped from the cache; undefined when
   * none. The fetch overwrites all of it (it checks it received `size` bytes) before any task
   * sees it, and a failed fetch hands it to no one.
   */
  private reusable(size: number): Uint8Array | undefined {
    const idleBefore = this.now() - RECYCLE_IDLE_MS;
    let looked = 0;
    for (const [sha, entry] of this.entries) {
      if (++looked > RECYCLE_SCAN) break;
      if (entry.pins > 0 || entry.idleSince > idleBefore || entry.data.byteLength !== size || this.fetching.has(sha)) continue;
      this.entries.delete(sha);
      this.heldBytes -= size;
      this.stats.recycled++;
      // Its bytes change now: no digest cached for the old ones may be reused (common/hash.ts).
      markRewritten(entry.data.buffer);
      return entry.data;
    }
    return undefined;
  }

  /** Drops unpinned blobs, least recently used first, until the cache is within its bound. */
  private evict(): void {
    if (this.heldBytes <= this.maxBytes) return;
    for (const [sha, entry] of this.entries) {
      if (this.heldBytes <= this.maxBytes) break;
      // A blob just fetched is pinned by its waiter right after: never drop one still being handed out.
      if (entry.pins > 0 || this.fetching.has(sha)) continue;
      this.entries.delete(sha);
      this.heldBytes -= entry.data.byteLength;
    }
  }
}
