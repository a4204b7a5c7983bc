// The state stores' blobs (inputs by reference, shared inputs), on both implementations: stored
// once per sha256 however many jobs hold them, read back in ranges, dropped with the last job
// that holds them (markJobFinished, deleteJob or releaseBlobs), and the in-memory store bounded.
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryStateStore } from "../../../scheduler/backends/memory.js";
import { RedisStateStore } from "../../../scheduler/backends/redis-state.js";
import type { StateStore } from "../../../scheduler/backends/types.js";
import { auditedRedis, type AuditedRedis } from "../../helpers/redis-audit.js";
import { uniquePrefix } from "../../helpers/services.js";

const opened: StateStore[] = [];
// The Redis store runs on a private server under MONITOR: the blob paths' commands must be ones
// operators grant (scheduler/backends/redis-commands.ts).
let audit: AuditedRedis;
beforeAll(async () => {
  audit = await auditedRedis();
});
afterAll(async () => {
  for (const s of opened) await s.close();
  await audit?.stop();
});

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe.each([
  ["memory", async () => new MemoryStateStore()],
  ["redis", async () => RedisStateStore.connect({ url: audit.url, prefix: uniquePrefix("blobs") })],
])("%s store: blobs", (_, open) => {
  it("stored once, read in ranges, dropped with the last holder", async () => {
    const store = await open();
    opened.push(store);
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const id = sha(data);
    await store.putBlob(id, data, "job-a");
    await store.putBlob(id, data, "job-b");
    expect((await store.readBlob(id, 0, 10))!.equals(data.subarray(0, 10))).toBe(true);
    expect((await store.readBlob(id, 1024 * 1024, 1024 * 1024))!.equals(data.subarray(1024 * 1024, 2 * 1024 * 1024))).toBe(true);
    // The last chunk is short: what is left.
    expect((await store.readBlob(id, 3 * 1024 * 1024, 1024 * 1024))!.byteLength).toBe(17);
    await store.markJobFinished("job-a");
    expect(await store.readBlob(id, 0, 4)).toBeDefined();
    await store.deleteJob("job-b");
    expect(await store.readBlob(id, 0, 4)).toBeUndefined();
    // A job that never held it releases nothing; an unknown blob reads as undefined.
    await store.releaseBlobs("job-c");
    expect(await store.readBlob(sha(Buffer.from("none")), 0, 4)).toBeUndefined();
  });

  it("remembers which inputs of a job are references", async () => {
    const store = await open();
    opened.push(store);
    const refs = [null, { sha256: "a".repeat(64), sizeBytes: 5 }];
    await store.putJob("job-r", [Buffer.from("x"), Buffer.alloc(0)], "{}", refs);
    expect(await store.getJobInputRefs("job-r")).toEqual(refs);
    await store.markJobFinished("job-r");
    expect(await store.getJobInputRefs("job-r")).toBeUndefined();
  });
});

describe("memory store bound", () => {
  it("refuses a blob past blobStoreBytes with RESOURCE_EXHAUSTED, and takes it once room is freed", async () => {
    const store = new MemoryStateStore(undefined, undefined, 1024);
    const a = randomBytes(800);
    const b = randomBytes(800);
    await store.putBlob(sha(a), a, "job-1");
    await expect(store.putBlob(sha(b), b, "job-2")).rejects.toMatchObject({ code: 8 });
    await store.releaseBlobs("job-1");
    expect(store.storedBlobBytes).toBe(0);
    await store.putBlob(sha(b), b, "job-2");
    expect(store.storedBlobBytes).toBe(800);
  });
});

describe("Redis commands", () => {
  it("every command the blob paths sent is one the operators' ACL grants", async () => {
    expect(await audit.notGranted()).toEqual([]);
    for (const c of ["set", "getrange", "exists", "eval", "sadd", "smembers", "srem"]) expect(audit.seen).toContain(c);
  });
});
