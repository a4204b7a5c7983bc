// The agent's blob cache (agent/blob-cache.ts): one fetch per blob however many tasks ask at
// once, bounded in bytes with the least recently used unpinned blob dropped first, a blob in
// use never dropped, a failed fetch not remembered, and the memory of a blob left idle reused by
// the next fetch of its size.
import { describe, expect, it } from "vitest";
import { BlobCache, RECYCLE_IDLE_MS, type BlobFetcher } from "../../agent/blob-cache.js";

const use = { jobId: "job-1", taskIndex: 0 };
const ref = (sha: string, size: number) => ({ sha256: sha.padEnd(64, "0"), sizeBytes: String(size) });

/** A fetcher that fills each blob with its first hex digit, counts calls and can be told to fail. */
function filler(): { fetch: BlobFetcher; calls: string[]; failNext: boolean } {
  const state = {
    calls: [] as string[],
    failNext: false,
    fetch: (async (r, into) => {
      state.calls.push(r.sha256);
      await new Promise((res) => setTimeout(res, 5));
      if (state.failNext) {
        state.failNext = false;
        throw new Error("scheduler unreachable");
      }
      into.fill(parseInt(r.sha256[0]!, 16));
    }) as BlobFetcher,
  };
  return state;
}

describe("agent blob cache", () => {
  it("tasks asking for the same blob at once share one fetch; later ones hit the cache", async () => {
    const f = filler();
    const cache = new BlobCache(1024, f.fetch);
    const [a, b] = await Promise.all([cache.acquire(ref("a", 100), use), cache.acquire(ref("a", 100), use)]);
    expect(a).toBe(b);
    expect(a![0]).toBe(10);
    expect(a!.buffer).toBeInstanceOf(SharedArrayBuffer);
    cache.release(ref("a", 0).sha256);
    cache.release(ref("a", 0).sha256);
    await cache.acquire(ref("a", 100), use);
    expect(f.calls.length).toBe(1);
    expect(cache.snapshot()).toMatchObject({ fetches: 1, hits: 2, bytes: 100, entries: 1 });
  });

  it("drops the least recently used unpinned blobs past its bound, never a pinned one", async () => {
    const f = filler();
    const cache = new BlobCache(250, f.fetch);
    const sha = (c: string) => ref(c, 0).sha256;
    await cache.acquire(ref("a", 100), use);
    await cache.acquire(ref("b", 100), use);
    cache.release(sha("a"));
    cache.release(sha("b"));
    await cache.acquire(ref("a", 100), use); // a is now the most recent (and pinned)
    await cache.acquire(ref("c", 100), use); // 300 > 250: b goes, a is pinned
    expect(cache.snapshot()).toMatchObject({ bytes: 200, entries: 2 });
    await cache.acquire(ref("b", 100), use); // fetched again
    expect(f.calls.map((c) => c[0])).toEqual(["a", "b", "c", "b"]);
    // All three pinned: over the bound until they are released.
    expect(cache.snapshot().bytes).toBe(300);
    for (const c of ["a", "b", "c"]) cache.release(sha(c));
    expect(cache.snapshot().bytes).toBeLessThanOrEqual(250);
  });

  it("a failed fetch is not remembered: the next task fetches again", async () => {
    const f = filler();
    const cache = new BlobCache(1024, f.fetch);
    f.failNext = true;
    await expect(cache.acquire(ref("d", 10), use)).rejects.toThrow(/unreachable/);
    expect((await cache.acquire(ref("d", 10), use))[0]).toBe(13);
    expect(f.calls.length).toBe(2);
    expect(cache.snapshot()).toMatchObject({ fetches: 1, entries: 1 });
  });

  it("a fetch reuses the memory of a same-size blob idle for RECYCLE_IDLE_MS, never one in use or idle less long", async () => {
    const f = filler();
    let clock = 0;
    const cache = new BlobCache(1 << 20, f.fetch, () => clock);
    const sha = (c: string) => ref(c, 0).sha256;
    const a = await cache.acquire(ref("a", 100), use);
    const b = await cache.acquire(ref("b", 100), use);
    cache.release(sha("a"));
    clock += RECYCLE_IDLE_MS - 1;
    // a is idle, but not long enough; b is pinned: fresh memory, both kept.
    const c = await cache.acquire(ref("c", 100), use);
    expect(c.buffer).not.toBe(a.buffer);
    expect(c.buffer).not.toBe(b.buffer);
    expect(cache.snapshot()).toMatchObject({ recycled: 0, entries: 3 });
    clock += 1;
    // Another size never takes a's memory; the same size does, with its own bytes, and a is gone.
    const e = await cache.acquire(ref("e", 50), use);
    expect(e.buffer).not.toBe(a.buffer);
    const d = await cache.acquire(ref("d", 100), use);
    expect(d.buffer).toBe(a.buffer);
    expect([...d].every((v) => v === 13)).toBe(true);
    expect(b[0]).toBe(11);
    expect(cache.snapshot()).toMatchObject({ recycled: 1, entries: 4, bytes: 350 });
    await cache.acquire(ref("a", 100), use);
    expect(f.calls.map((x) => x[0])).toEqual(["a", "b", "c", "e", "d", "a"]);
  });
});
