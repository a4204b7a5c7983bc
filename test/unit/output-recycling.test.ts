// Recycled output buffers on the agent's real worker path (agent/pool/worker-pool.ts with an
// OutputPool on the main thread): real worker threads and compiled kernels. An output given back
// goes to a worker with a later task of its kernel and holds that task's output; results stay
// byte-exact, the pool's bound holds, a given-back buffer is poisoned (DISTX_POISON_RELEASED_OUTPUTS
// in the agent tests) and detached once a worker has it, and sha256Once never reuses a digest
// of a recycled buffer's old bytes.
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { WorkerPool, type PoolResult } from "../../agent/pool/worker-pool.js";
import { OutputPool } from "../../agent/wasm/output-pool.js";
import { compileWasmKernel } from "../../common/kernel-abi.js";
import { sha256Hex, sha256Once } from "../../common/hash.js";
import { repoRoot } from "../../common/paths.js";
import { exampleKernels, saxpyInput } from "../../kernels/reference/index.js";
import { fixtureKernel } from "../helpers/fixtures.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const POISON = 0xdb;
let echo: WebAssembly.Module;
let pool: WorkerPool | undefined;

beforeAll(async () => {
  echo = await compileWasmKernel(await fixtureKernel("echo"));
});
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

/** The echo fixture's input: spins (0), then the payload it returns with the header (its output is its input). */
const echoInput = (payload: Uint8Array): Uint8Array => {
  const b = new Uint8Array(4 + payload.byteLength);
  b.set(payload, 4);
  return b;
};
const run = (p: WorkerPool, input: Uint8Array): Promise<PoolResult> =>
  p.run({ kernelId: "echo", module: echo, input, timeoutMs: 10_000, memoryLimitBytes: 16 * MiB }).promise;

describe("recycled output buffers through the worker pool", () => {
  it("keeps results byte-exact over many tasks of different sizes while their buffers are recycled", async () => {
    pool = new WorkerPool({ size: 2, outputPool: { maxTotalBytes: 8 * MiB, poison: POISON } });
    const sizes = [64 * KiB, 96 * KiB, 64 * KiB, 300 * KiB, 96 * KiB, 1 * MiB];
    // Results held for a while (as unacknowledged ones are), given back out of order.
    let held: { result: PoolResult; want: Buffer }[] = [];
    for (let round = 0; round < 12; round++) {
      const inputs = sizes.map((n, i) => echoInput(randomBytes(n + ((round + i) % 3) * 4)));
      const wants = inputs.map((x) => Buffer.from(x)); // inputs are transferred: keep a copy
      const results = await Promise.all(inputs.map((x) => run(pool!, x)));
      results.forEach((r, i) => {
        expect(r.output.equals(wants[i]!)).toBe(true);
        expect(r.release).toBeTypeOf("function");
      });
      // Held ones are still intact after other tasks have run: nothing recycled them behind our back.
      for (const h of held) expect(h.result.output.equals(h.want)).toBe(true);
      for (const h of held.filter((_, i) => i % 2 === round % 2)) h.result.release!();
      held = [...held.filter((_, i) => i % 2 !== round % 2), ...results.map((result, i) => ({ result, want: wants[i]! }))];
    }
    for (const h of held) h.result.release!();
    const outputs = pool.outputs!;
    // Recycling really happened: most outputs went into a given-back buffer.
    expect(outputs.reused).toBeGreaterThan(30);
    expect(outputs.bytes).toBeLessThanOrEqual(8 * MiB);
  });

  it("poisons a given-back output, detaches it once a worker has it, and hands it to no one twice", async () => {
    pool = new WorkerPool({ size: 1, outputPool: { maxTotalBytes: 4 * MiB, poison: POISON } });
    const first = await run(pool, echoInput(randomBytes(128 * KiB)));
    const view = first.output;
    first.release!();
    first.release!(); // a second give-back is ignored: the buffer is kept once
    expect(pool.outputs!.size).toBe(1);
    // A reader after the give-back sees poison, never a plausible result...
    expect(view.every((b) => b === POISON)).toBe(true);
    const payload = randomBytes(128 * KiB);
    const second = await run(pool, echoInput(payload));
    expect(pool.outputs!.reused).toBe(1);
    // ...and nothing at all once the buffer went to the worker with the next task.
    expect(view.byteLength).toBe(0);
    expect(second.output.subarray(4).equals(payload)).toBe(true);
    expect(pool.outputs!.size).toBe(0);
  });

  it("returns a buffer the task's output did not fit unused, and keeps it", async () => {
    // saxpy's output length is in its input's header (n), so one input length can give two output lengths.
    const saxpy = await compileWasmKernel(await readFile(path.join(repoRoot(), "build/kernels/saxpy.wasm")));
    const input = (n: number) => {
      const b = saxpyInput(2, new Float32Array(32 * KiB).fill(1), new Float32Array(32 * KiB).fill(3));
      new DataView(b.buffer).setUint32(4, n, true);
      return b;
    };
    pool = new WorkerPool({ size: 1, outputPool: { maxTotalBytes: 4 * MiB } });
    const runSaxpy = (x: Uint8Array) => pool!.run({ kernelId: "saxpy", module: saxpy, input: x, timeoutMs: 10_000, memoryLimitBytes: 16 * MiB }).promise;
    (await runSaxpy(input(32 * KiB))).release!();
    expect(pool.outputs!.bytes).toBe(128 * KiB);
    // Same input length, shorter output: the kept 128 KiB buffer goes with the task and comes back untouched.
    const shorter = input(20 * KiB);
    const want = Buffer.from(exampleKernels.saxpy!.reference(shorter));
    const r = await runSaxpy(shorter);
    expect(pool.outputs!.reused).toBe(1);
    expect(r.output.byteLength).toBe(80 * KiB);
    expect(r.output.equals(want)).toBe(true);
    expect(pool.outputs!.bytes).toBe(128 * KiB);
    r.release!();
    expect(pool.outputs!.bytes).toBe(208 * KiB);
  });

  it("keeps no more bytes than its bound", async () => {
    pool = new WorkerPool({ size: 2, outputPool: { maxTotalBytes: 400 * KiB } });
    const results = await Promise.all(Array.from({ length: 8 }, () => run(pool!, echoInput(randomBytes(128 * KiB)))));
    for (const r of results) r.release!();
    expect(pool.outputs!.bytes).toBeLessThanOrEqual(400 * KiB);
    expect(pool.outputs!.size).toBe(3);
  });

  it("with the pool off (0 bytes), results carry no release and are fresh buffers", async () => {
    pool = new WorkerPool({ size: 1, outputPool: { maxTotalBytes: 0 } });
    expect(pool.outputs).toBeUndefined();
    for (let i = 0; i < 4; i++) {
      const payload = randomBytes(128 * KiB + i);
      const r = await run(pool, echoInput(payload));
      expect(r.release).toBeUndefined();
      expect(r.output.subarray(4).equals(payload)).toBe(true);
    }
  });

  it("never answers a stale sha256Once digest for a recycled buffer", async () => {
    pool = new WorkerPool({ size: 1, outputPool: { maxTotalBytes: 4 * MiB } });
    const first = await run(pool, echoInput(randomBytes(128 * KiB)));
    const digest = sha256Once(first.output);
    expect(digest).toBe(sha256Hex(first.output));
    first.release!();
    const second = await run(pool, echoInput(randomBytes(128 * KiB)));
    expect(pool.outputs!.reused).toBe(1);
    // The old view's bytes are gone (its buffer now holds the second output): its digest is not the cached one.
    expect(sha256Once(first.output)).toBe(sha256Hex(first.output));
    expect(sha256Once(first.output)).not.toBe(digest);
    expect(sha256Once(second.output)).toBe(sha256Hex(second.output));
  });

  it("an OutputPool's given-back buffer gets no cached digest, even one hashed before it was given back", () => {
    const outputs = new OutputPool({ minBytes: 0 });
    const buffer = new ArrayBuffer(1024);
    const view = new Uint8Array(buffer).fill(1);
    const before = sha256Once(view);
    outputs.give(buffer);
    const again = outputs.take(1024);
    expect(again).toBe(buffer);
    new Uint8Array(again).fill(2);
    expect(sha256Once(view)).toBe(sha256Hex(view));
    expect(sha256Once(view)).not.toBe(before);
  });
});
