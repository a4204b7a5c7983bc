// Output buffers reused between kernel tasks (agent/wasm/output-pool.ts): runWasmKernel copies an
// output into a buffer the caller gave back, overwriting all of it, with exactly its own length;
// the pool's bounds hold.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { MemoryPool } from "../../agent/wasm/memory-pool.js";
import { OutputPool } from "../../agent/wasm/output-pool.js";
import { runWasmKernel } from "../../agent/wasm/run-kernel.js";
import { compileWasmKernel } from "../../common/kernel-abi.js";
import { repoRoot } from "../../common/paths.js";
import { saxpyInput } from "../../kernels/reference/index.js";

const KiB = 1024;
const CAP = 64 * 2 ** 20;
/** Byte-equal (vitest's deep equality walks 256 KiB element by element, slowly). */
const same = (a: ArrayBuffer, b: ArrayBuffer) => Buffer.from(a).equals(Buffer.from(b));
const floats = (n: number, at: number) => Float32Array.from({ length: n }, (_, i) => (i % 97) - 48 + at);

describe("runWasmKernel with an OutputPool", () => {
  let saxpy: WebAssembly.Module;
  beforeAll(async () => {
    saxpy = await compileWasmKernel(await readFile(path.join(repoRoot(), "build/kernels/saxpy.wasm")));
  });

  it("copies each output into a given-back buffer of its length, overwriting every byte, and allocates otherwise", () => {
    const outputs = new OutputPool();
    const memoryPool = new MemoryPool();
    const run = (a: number, n: number, outputPool?: OutputPool) => runWasmKernel(saxpy, saxpyInput(a, floats(n, 1), floats(n, 2)), { memoryLimitBytes: CAP, memoryPool, ...(outputPool ? { outputPool } : {}) });
    const n = 64 * KiB;
    const first = run(2, n, outputs);
    expect(same(first, run(2, n))).toBe(true);
    expect(outputs).toMatchObject({ created: 1, reused: 0 });
    // Given back with bytes that are in no output: the next output of that size must replace them all.
    new Uint8Array(first).fill(0xa5);
    outputs.give(first);
    const second = run(-0.5, n, outputs);
    expect(second).toBe(first);
    expect(outputs).toMatchObject({ created: 1, reused: 1, size: 0, bytes: 0 });
    expect(same(second, run(-0.5, n))).toBe(true);
    // Another length never gets it: an output is exactly its own bytes, nothing of a longer earlier one.
    outputs.give(second);
    const shorter = run(3, n - 16, outputs);
    expect(shorter).not.toBe(second);
    expect(shorter.byteLength).toBe((n - 16) * 4);
    expect(same(shorter, run(3, n - 16))).toBe(true);
    expect(outputs.size).toBe(1);
  });

  it("takes nothing for a task that fails", () => {
    const outputs = new OutputPool();
    const kept = new ArrayBuffer(256 * KiB);
    outputs.give(kept);
    // Not a saxpy input (too short): the kernel fails before any output exists.
    expect(() => runWasmKernel(saxpy, new Uint8Array(3), { memoryLimitBytes: CAP, outputPool: outputs })).toThrow();
    expect(outputs).toMatchObject({ size: 1, reused: 0 });
  });
});

describe("output pool bounds", () => {
  it("keeps at most maxCount buffers and maxTotalBytes, dropping the oldest for a newer one", () => {
    const pool = new OutputPool({ maxCount: 2, maxTotalBytes: 1024 * KiB, minBytes: 0 });
    const [a, b, c] = [new ArrayBuffer(100 * KiB), new ArrayBuffer(100 * KiB), new ArrayBuffer(200 * KiB)];
    pool.give(a);
    pool.give(b);
    pool.give(c);
    expect(pool).toMatchObject({ size: 2, bytes: 300 * KiB });
    expect(pool.take(100 * KiB)).toBe(b);
    expect(pool.take(100 * KiB)).not.toBe(a);
    pool.give(new ArrayBuffer(900 * KiB));
    expect(pool).toMatchObject({ size: 1, bytes: 900 * KiB });
    pool.give(new ArrayBuffer(2048 * KiB));
    expect(pool.size).toBe(1);
  });

  it("ignores buffers below minBytes, detached ones, and one given twice", () => {
    const pool = new OutputPool({ minBytes: 64 * KiB });
    pool.give(new ArrayBuffer(KiB));
    const moved = new ArrayBuffer(128 * KiB);
    structuredClone(moved, { transfer: [moved] });
    pool.give(moved);
    expect(pool.size).toBe(0);
    const once = new ArrayBuffer(128 * KiB);
    pool.give(once);
    pool.give(once);
    expect(pool).toMatchObject({ size: 1, bytes: 128 * KiB });
    expect(pool.take(128 * KiB)).toBe(once);
    expect(pool.take(128 * KiB)).not.toBe(once);
  });

  it("refuses bounds that are not non-negative integers", () => {
    expect(() => new OutputPool({ maxCount: -1 })).toThrow(RangeError);
    expect(() => new OutputPool({ maxTotalBytes: 1.5 })).toThrow(RangeError);
  });
});
