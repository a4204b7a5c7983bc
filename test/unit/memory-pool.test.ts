// The pool of reused linear memories (agent/wasm/memory-pool.ts): its bounds, its size classes,
// and the property that matters for tenants: a memory handed to a task holds nothing of any
// earlier task, whether that task grew its memory, trapped, or hit its memory cap.
import { mkdtemp, readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { WorkerPool } from "../../agent/pool/worker-pool.js";
import { MemoryPool } from "../../agent/wasm/memory-pool.js";
import { KernelRunError, runWasmKernel } from "../../agent/wasm/run-kernel.js";
import { compileWasmKernel } from "../../common/kernel-abi.js";
import { repoRoot } from "../../common/paths.js";
import { buildKernel } from "../../kernels/toolchain/build.js";
import { fixtureKernel } from "../helpers/fixtures.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const PAGE = 64 * KiB;
const memory = (pages: number, maximum = 256) => new WebAssembly.Memory({ initial: pages, maximum });
const allZero = (m: WebAssembly.Memory) => new Uint8Array(m.buffer).every((b) => b === 0);

describe("memory pool bounds", () => {
  it("keeps at most maxCount memories, dropping the oldest for a newer one", () => {
    const pool = new MemoryPool({ maxCount: 2 });
    const [a, b, c] = [memory(1), memory(1), memory(1)];
    pool.release(a, 256);
    pool.release(b, 256);
    pool.release(c, 256);
    expect(pool).toMatchObject({ size: 2, bytes: 2 * PAGE, dropped: 1 });
    const got = [pool.acquire(1, 256), pool.acquire(1, 256)];
    expect(got).toContain(b);
    expect(got).toContain(c);
    expect(pool.acquire(1, 256)).not.toBe(a);
    expect(pool.created).toBe(1);
  });

  it("keeps at most maxTotalBytes in all, and never a memory over maxBytes", () => {
    const pool = new MemoryPool({ maxTotalBytes: 3 * MiB, maxBytes: 2 * MiB });
    pool.release(memory(16), 256); // 1 MiB
    pool.release(memory(32), 256); // 2 MiB: 3 MiB in all, the limit
    expect(pool).toMatchObject({ size: 2, bytes: 3 * MiB });
    pool.release(memory(48), 256); // 3 MiB: over maxBytes, not kept, nothing evicted for it
    expect(pool).toMatchObject({ size: 2, bytes: 3 * MiB, dropped: 1 });
    pool.release(memory(16), 256); // 1 MiB more: the oldest goes to make room
    expect(pool).toMatchObject({ size: 2, bytes: 3 * MiB, dropped: 2 });
    expect(pool.acquire(32, 256).buffer.byteLength).toBe(2 * MiB);
    expect(pool.bytes).toBe(1 * MiB);
  });

  it("keeps nothing with maxCount 0, and refuses bounds that are not non-negative integers", () => {
    const pool = new MemoryPool({ maxCount: 0 });
    pool.release(memory(1), 256);
    expect(pool.size).toBe(0);
    expect(() => new MemoryPool({ maxTotalBytes: -1 })).toThrow(RangeError);
    expect(() => new MemoryPool({ maxBytes: 1.5 })).toThrow(/maxBytes must be a non-negative integer/);
    expect(() => new MemoryPool({ maxCount: Number.NaN })).toThrow(RangeError);
  });
});

describe("memory pool size classes", () => {
  it("hands out a memory with the same cap, at least as big as asked, at most one size class up", () => {
    const pool = new MemoryPool();
    const small = memory(3);
    const grownish = memory(7);
    const big = memory(64);
    const otherCap = memory(4, 512);
    for (const m of [small, grownish, big, otherCap]) pool.release(m, m === otherCap ? 512 : 256);
    // 4 pages (class 2): not the 3-page one (too small), not 64 (class 6, too big), not another cap.
    expect(pool.acquire(4, 256)).toBe(grownish);
    expect(pool.acquire(4, 256)).not.toBe(big);
    expect(pool.acquire(3, 256)).toBe(small);
    // 40 pages (class 5): 64 pages is class 6, one up: taken.
    expect(pool.acquire(40, 256)).toBe(big);
    expect(pool.acquire(4, 512)).toBe(otherCap);
    expect(pool.reused).toBe(4);
  });

  it("zeroes a memory, grown or not, when it is given back", () => {
    const pool = new MemoryPool();
    const m = memory(1);
    m.grow(2);
    new Uint8Array(m.buffer).fill(0xee);
    pool.release(m, 256);
    const again = pool.acquire(3, 256);
    expect(again).toBe(m);
    expect(again.buffer.byteLength).toBe(3 * PAGE);
    expect(allZero(again)).toBe(true);
  });
});

describe("deferred zeroing", () => {
  it("keeps a given-back memory dirty until scrub(), and never hands out a dirty one", () => {
    const pool = new MemoryPool({ deferZeroing: true });
    const [a, b] = [memory(2), memory(2)];
    new Uint8Array(a.buffer).fill(0xee);
    new Uint8Array(b.buffer).fill(0xee);
    pool.release(a, 256);
    pool.release(b, 256);
    expect(pool.dirty).toBe(2);
    expect(allZero(a)).toBe(false);
    // Handed out before any scrub: zeroed on the way out.
    const got = pool.acquire(2, 256);
    expect(allZero(got)).toBe(true);
    expect(pool.dirty).toBe(1);
    expect(pool.scrub()).toBe(1);
    expect(pool.dirty).toBe(0);
    expect(allZero(a) && allZero(b)).toBe(true);
    expect(pool.scrub()).toBe(0);
  });

  it("forgets a dirty memory it drops to make room", () => {
    const pool = new MemoryPool({ deferZeroing: true, maxCount: 1 });
    pool.release(memory(1), 256);
    pool.release(memory(1), 256);
    expect(pool).toMatchObject({ size: 1, dirty: 1, dropped: 1 });
    expect(pool.scrub()).toBe(1);
  });
});

describe.each([false, true])("a reused memory holds nothing of an earlier task (deferZeroing %s)", (deferZeroing) => {
  let scribble: WebAssembly.Module;
  let hog: WebAssembly.Module;
  beforeAll(async () => {
    // Allocates 1 MiB at a time, writing into each, until its memory cap stops it.
    hog = await compileWasmKernel(await fixtureKernel("hog"));
    // Reports the non-zero bytes it finds past its output, then writes over all its memory and its input.
    const outDir = await mkdtemp(path.join(os.tmpdir(), "distx-scribble-"));
    const { wasmPath } = await buildKernel(path.join(repoRoot(), "test", "fixtures", "kernels", "scribble.ts"), { outDir });
    scribble = await compileWasmKernel(await readFile(wasmPath));
  });

  /** Input: u32 extra bytes to allocate (grows memory), u32 trap flag, then `pad` zero bytes (a bigger initial memory). */
  const input = (extra: number, trap = 0, pad = 0) => {
    const b = new Uint8Array(8 + pad);
    const v = new DataView(b.buffer);
    v.setUint32(0, extra, true);
    v.setUint32(4, trap, true);
    return b;
  };
  const scan = (out: ArrayBuffer) => {
    const v = new DataView(out);
    return { nonZero: v.getUint32(0, true), scanned: v.getUint32(4, true) };
  };
  const CAP = 8 * MiB;
  const CAP_PAGES = CAP / PAGE;

  for (const [what, first, expectError] of [
    ["grew its memory", input(5 * MiB), undefined],
    ["grew its memory, scribbled and trapped", input(5 * MiB, 1), /scribbled, then trapped/],
    ["hit its memory cap", input(0), "MEMORY_LIMIT"],
  ] as const) {
    it(`after a task that ${what}, the next one of that size class sees only zeros`, () => {
      const pool = new MemoryPool({ deferZeroing });
      const run = (bytes: Uint8Array, kernel = scribble) => runWasmKernel(kernel, bytes, { memoryLimitBytes: CAP, memoryPool: pool });
      if (expectError === undefined) expect(scan(run(first)).nonZero).toBe(0);
      else if (expectError === "MEMORY_LIMIT") {
        const err = (() => {
          try {
            run(first, hog);
          } catch (e) {
            return e;
          }
        })();
        expect(err).toBeInstanceOf(KernelRunError);
        expect((err as KernelRunError).code).toBe("MEMORY_LIMIT");
      } else expect(() => run(first)).toThrow(expectError);
      expect(pool.size).toBe(1);
      const keptBytes = pool.bytes;
      expect(keptBytes).toBeGreaterThan(5 * MiB);
      // The whole memory, as the next task will get it (below the heap base too, where the input was): zeros.
      const m = pool.acquire(4 * MiB / PAGE, CAP_PAGES);
      expect(m.buffer.byteLength).toBe(keptBytes);
      expect(allZero(m)).toBe(true);
      pool.release(m, CAP_PAGES);
      // And a kernel that reads all of its memory past its own data finds nothing of the first task.
      const r = scan(run(input(0, 0, 4 * MiB)));
      expect(pool.reused).toBe(2);
      expect(r.nonZero).toBe(0);
      expect(r.scanned).toBeGreaterThan(keptBytes - 4 * MiB - PAGE);
    });
  }
});

describe("in a pool's worker (zeroing deferred to its idle time)", () => {
  it("a task after a grown, scribbled and trapped one sees only zeros, and reports the memory it asked for", async () => {
    const outDir = await mkdtemp(path.join(os.tmpdir(), "distx-scribble-"));
    const { wasmPath } = await buildKernel(path.join(repoRoot(), "test", "fixtures", "kernels", "scribble.ts"), { outDir });
    const scribble = await compileWasmKernel(await readFile(wasmPath));
    const pool = new WorkerPool({ size: 1, memoryPool: { maxCount: 2 } });
    try {
      const task = (extra: number, trap: number, pad: number) => {
        const input = new Uint8Array(8 + pad);
        new DataView(input.buffer).setUint32(0, extra, true);
        new DataView(input.buffer).setUint32(4, trap, true);
        return pool.run({ kernelId: "scribble", module: scribble, input, timeoutMs: 30_000, memoryLimitBytes: 8 * MiB }).promise;
      };
      for (let round = 0; round < 3; round++) {
        await expect(task(5 * MiB, 1, 0)).rejects.toThrow(/scribbled, then trapped/);
        const r = await task(0, 0, 4 * MiB);
        expect(new DataView(r.output.buffer, r.output.byteOffset).getUint32(0, true)).toBe(0);
        // It was handed the bigger memory the trapped task grew, but asked for 4 MiB and a little.
        expect(r.memoryBytes).toBe(Math.ceil((4 * MiB + 8 + 2 * PAGE) / PAGE) * PAGE);
        expect(new DataView(r.output.buffer, r.output.byteOffset).getUint32(4, true)).toBeGreaterThan(5 * MiB - 4 * MiB);
      }
    } finally {
      await pool.close();
    }
  });
});
