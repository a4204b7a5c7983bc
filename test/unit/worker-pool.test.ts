// The agent's kernel worker pool, on real worker threads and real compiled kernels.
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { epochMs, unheardCount, WorkerActivity } from "../../agent/pool/messages.js";
import { TaskFailure, WorkerPool, type PoolTask } from "../../agent/pool/worker-pool.js";
import { MemoryPool, runWasmKernel } from "../../agent/wasm/run-kernel.js";
import { compileWasmKernel } from "../../common/kernel-abi.js";
import { repoRoot } from "../../common/paths.js";
import { buildKernel } from "../../kernels/toolchain/build.js";
import { fixtureKernel } from "../helpers/fixtures.js";

let pool: WorkerPool;
let echo: WebAssembly.Module;
let spin: WebAssembly.Module;
let trap: WebAssembly.Module;

const MiB = 1024 * 1024;
const echoInput = (spins: number, payload: Uint8Array) => {
  const b = new Uint8Array(4 + payload.byteLength);
  new DataView(b.buffer).setUint32(0, spins, true);
  b.set(payload, 4);
  return b;
};

beforeAll(async () => {
  const compile = async (name: "echo" | "spin" | "trap") => compileWasmKernel(await fixtureKernel(name));
  [echo, spin, trap] = await Promise.all([compile("echo"), compile("spin"), compile("trap")]);
  pool = new WorkerPool({ size: 2 });
});

afterAll(async () => {
  await pool?.close();
});

/**
 * A burst of run() calls is sent to the workers together at the end of the current job (a
 * microtask), before any reply can be handled: after this the counts below are exact.
 */
const sent = () => Promise.resolve();

describe("worker pool", () => {
  it("runs tasks and returns their outputs", async () => {
    const payload = new Uint8Array([1, 2, 3, 4, 5]);
    const r = await pool.run({ kernelId: "echo", module: echo, input: echoInput(10, payload), timeoutMs: 5000, memoryLimitBytes: MiB }).promise;
    expect([...r.output.subarray(4)]).toEqual([1, 2, 3, 4, 5]);
    expect(r.runMs).toBeGreaterThanOrEqual(0);
  });

  it("moves a large input to the worker by transfer, not by copy", async () => {
    const big = echoInput(0, new Uint8Array(4 * MiB).fill(7));
    const r = await pool.run({ kernelId: "echo", module: echo, input: big, timeoutMs: 5000, memoryLimitBytes: 16 * MiB }).promise;
    expect(big.byteLength).toBe(0); // detached: its buffer now belongs to the worker
    expect(r.output.byteLength).toBe(4 * MiB + 4);
    expect(r.output[4 * MiB + 3]).toBe(7);
  });

  it("copies a small input, leaving the caller's buffer intact", async () => {
    const small = echoInput(0, new Uint8Array([9]));
    await pool.run({ kernelId: "echo", module: echo, input: small, timeoutMs: 5000, memoryLimitBytes: MiB }).promise;
    expect(small.byteLength).toBe(5);
  });

  it("fails a trapping task with the trap's message and keeps the worker", async () => {
    const before = pool.getStats().restarts;
    const err = await pool.run({ kernelId: "trap", module: trap, input: new Uint8Array(4), timeoutMs: 5000, memoryLimitBytes: MiB }).promise.catch((e) => e);
    expect(err).toBeInstanceOf(TaskFailure);
    expect(err.code).toBe("TRAP");
    expect(err.message).toMatch(/deliberate trap/);
    expect(pool.getStats().restarts).toBe(before);
  });

  it("stops a runaway kernel at its timeout by replacing its worker, and keeps serving", async () => {
    const before = pool.getStats().restarts;
    const err = await pool.run({ kernelId: "spin", module: spin, input: new Uint8Array(4), timeoutMs: 200, memoryLimitBytes: MiB }).promise.catch((e) => e);
    expect(err.code).toBe("TIMEOUT");
    expect(pool.getStats().restarts).toBe(before + 1);
    expect(pool.size).toBe(2);
    const r = await pool.run({ kernelId: "echo", module: echo, input: echoInput(0, new Uint8Array([42])), timeoutMs: 5000, memoryLimitBytes: MiB }).promise;
    expect(r.output[4]).toBe(42);
  });

  it("cancels queued and running tasks", async () => {
    const running = [0, 1].map(() => pool.run({ kernelId: "spin", module: spin, input: new Uint8Array(4), timeoutMs: 60_000, memoryLimitBytes: MiB }));
    const queued = pool.run({ kernelId: "echo", module: echo, input: echoInput(0, new Uint8Array(1)), timeoutMs: 5000, memoryLimitBytes: MiB });
    await sent();
    await new Promise((r) => setTimeout(r, 100));
    expect(pool.getStats()).toMatchObject({ running: 2, queued: 1 });
    queued.cancel("test");
    for (const h of running) h.cancel("test");
    for (const h of [...running, queued]) expect((await h.promise.catch((e) => e)).code).toBe("CANCELLED");
    await pool.idle();
    expect(pool.getStats()).toMatchObject({ running: 0, queued: 0 });
  });
});

const u32s = (...values: number[]) => {
  const b = new Uint8Array(4 * values.length);
  values.forEach((v, i) => new DataView(b.buffer).setUint32(4 * i, v, true));
  return b;
};
const u32At = (b: Uint8Array, offset: number) => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(offset, true);

describe("worker pool pipelining", () => {
  // A pool of its own, so the per-kernel run times it learns come from these tests only.
  let fast: WorkerPool;
  // A tiny echo task that returns `i` after its 4-byte header.
  const tiny = (i: number): PoolTask => ({ kernelId: "echo", module: echo, input: echoInput(0, u32s(i)), timeoutMs: 30_000, memoryLimitBytes: MiB });

  /** Runs tiny echo tasks until the pool has measured them as tiny enough to pipeline 8 deep. */
  async function warmUp(): Promise<number> {
    for (let round = 0; round < 100 && fast.pipelineDepth("echo") < 8; round++) {
      await Promise.all(Array.from({ length: 50 }, (_, i) => fast.run(tiny(i)).promise));
    }
    const depth = fast.pipelineDepth("echo");
    expect(depth).toBeGreaterThanOrEqual(8);
    return depth;
  }

  beforeAll(() => {
    fast = new WorkerPool({ size: 2 });
  });

  afterAll(async () => {
    await fast?.close();
  });

  it("runs a kernel never measured one task per worker", async () => {
    const probe = new WorkerPool({ size: 2 });
    try {
      expect(probe.pipelineDepth("echo")).toBe(1);
      const handles = Array.from({ length: 6 }, (_, i) => probe.run(tiny(i)));
      await sent();
      expect(probe.getStats()).toMatchObject({ running: 2, queued: 4, pipelined: 0, maxInFlight: 1 });
      await Promise.all(handles.map((h) => h.promise));
    } finally {
      await probe.close();
    }
  });

  it("pipelines many tiny tasks, several in flight per worker, each with its own output", async () => {
    const depth = await warmUp();
    const before = fast.getStats();
    const handles = Array.from({ length: 2000 }, (_, i) => fast.run(tiny(i)));
    await sent();
    // Both workers were idle: each got `depth` tasks at once, one running and the rest behind it.
    const now = fast.getStats();
    expect(now).toMatchObject({ running: 2, queued: 1998 });
    expect(now.pipelined - before.pipelined).toBe(2 * (depth - 1));
    expect(now.maxInFlight).toBeGreaterThanOrEqual(depth);
    const results = await Promise.all(handles.map((h) => h.promise));
    results.forEach((r, i) => expect(u32At(r.output, 4)).toBe(i));
    const after = fast.getStats();
    expect(after.completed - before.completed).toBe(2000);
    expect(after.failed).toBe(before.failed);
    expect(after.restarts).toBe(before.restarts);
    await fast.idle();
    expect(fast.getStats()).toMatchObject({ running: 0, queued: 0 });
  });

  it("gives each pipelined task its own input, through the input ring and, once it is full, packed", async () => {
    const one = new WorkerPool({ size: 1 });
    try {
      // 60 KiB inputs, up to 64 deep once the kernel is measured: up to more than the 2 MiB ring holds at once.
      const input = (i: number) => echoInput(0, new Uint8Array(60 * 1024 - 4).fill(i & 0xff).map((v, k) => (k % 251 === 0 ? (i >> 8) & 0xff : v)));
      for (let round = 0; round < 3; round++) {
        const inputs = Array.from({ length: 300 }, (_, i) => input(round * 300 + i));
        const results = await Promise.all(inputs.map((b) => one.run({ kernelId: "echo", module: echo, input: b, timeoutMs: 30_000, memoryLimitBytes: MiB }).promise));
        results.forEach((r, i) => expect(Buffer.from(r.output).equals(Buffer.from(inputs[i]!))).toBe(true));
        // Copied, not moved: the caller's buffers are intact.
        expect(inputs.every((b) => b.byteLength === 60 * 1024)).toBe(true);
      }
    } finally {
      await one.close();
    }
  });

  it("still transfers a large input (sent only to an idle worker) among pipelined tasks", async () => {
    await warmUp();
    const small = Array.from({ length: 100 }, (_, i) => fast.run(tiny(i)));
    const big = echoInput(0, new Uint8Array(2 * MiB).fill(3));
    const large = fast.run({ kernelId: "echo", module: echo, input: big, timeoutMs: 30_000, memoryLimitBytes: 16 * MiB });
    const more = Array.from({ length: 100 }, (_, i) => fast.run(tiny(1000 + i)));
    const r = await large.promise;
    expect(big.byteLength).toBe(0); // detached: transferred, not copied
    expect(r.output.byteLength).toBe(2 * MiB + 4);
    expect(r.output[2 * MiB + 3]).toBe(3);
    const outs = await Promise.all([...small, ...more].map((h) => h.promise));
    outs.forEach((o, i) => expect(u32At(o.output, 4)).toBe(i < 100 ? i : 1000 + i - 100));
  });

  it("times out a long task pipelined behind tiny ones and sends the tasks behind it back to the queue", async () => {
    const depth = await warmUp();
    const before = fast.getStats();
    const started: number[] = [];
    let longStarted = 0;
    // The same kernel as the tiny tasks, so it is pipelined like them; ~4·10⁹ iterations never end in time.
    const long = fast.run({ ...tiny(0), input: echoInput(0xffffffff, u32s(0)), timeoutMs: 300, onStart: () => longStarted++ });
    // Both workers idle: the long task goes to the first, then tasks alternate, so depth − 1 of them
    // wait on the first worker behind the long one.
    const behind = Array.from({ length: 4 * depth }, (_, i) => fast.run({ ...tiny(i), onStart: () => started.push(i) }));
    await sent();
    expect(longStarted).toBe(1);
    expect(started).toEqual([0]); // the only other task running yet: the second worker's first
    expect(fast.getStats().pipelined - before.pipelined).toBe(2 * (depth - 1));
    const err = await long.promise.catch((e) => e);
    expect(err).toBeInstanceOf(TaskFailure);
    expect(err.code).toBe("TIMEOUT");
    // The slow run counts at once: the kernel is not pipelined again until it is measured tiny again.
    expect(fast.pipelineDepth("echo")).toBe(1);
    const results = await Promise.all(behind.map((h) => h.promise));
    results.forEach((r, i) => expect(u32At(r.output, 4)).toBe(i));
    const after = fast.getStats();
    expect(after.restarts).toBe(before.restarts + 1);
    // At least the depth − 1 sent at first (more if the depth grew while the other worker's tiny
    // runs were measured and the first worker took more behind the long one).
    expect(after.requeued - before.requeued).toBeGreaterThanOrEqual(depth - 1);
    expect(after.failed - before.failed).toBe(1);
    expect(after.completed - before.completed).toBe(4 * depth);
    // Each task started once, when it really started: none on being sent, none twice after the requeue.
    expect([...started].sort((a, b) => a - b)).toEqual(Array.from({ length: 4 * depth }, (_, i) => i));
  });

  it("cancels a task waiting behind the running one without stopping its worker", async () => {
    const depth = await warmUp();
    const before = fast.getStats();
    // Task 0 spins for a while (10⁸ iterations, a tenth of a second or so), so task 2 behind it
    // has surely not begun when it is cancelled.
    const handles = Array.from({ length: 4 * depth }, (_, i) => fast.run(i === 0 ? { ...tiny(0), input: echoInput(100_000_000, u32s(0)) } : tiny(i)));
    await sent();
    // Tasks alternate between the two idle workers: task 2 waits on the first worker behind task 0.
    handles[2]!.cancel("test");
    expect(fast.getStats()).toMatchObject({ running: 2, queued: 4 * depth - 3 });
    expect((await handles[2]!.promise.catch((e) => e)).code).toBe("CANCELLED");
    const results = await Promise.all(handles.filter((_, i) => i !== 2).map((h) => h.promise));
    results.forEach((r, j) => expect(u32At(r.output, 4)).toBe(j < 2 ? j : j + 1));
    await fast.idle();
    const after = fast.getStats();
    expect(after.restarts).toBe(before.restarts);
    expect(after.failed - before.failed).toBe(1);
    expect(after.completed - before.completed).toBe(4 * depth - 1); // the cancelled task's own reply was dropped
    expect(after).toMatchObject({ running: 0, queued: 0 });
  });

  it("cancels a running task with tasks behind it: its worker is replaced and they run elsewhere", async () => {
    const depth = await warmUp();
    const before = fast.getStats();
    // The first task never ends on its own (a tiny one could be finished before the cancel, and
    // cancelling a finished task stops nothing); it is pipelined like the tiny ones behind it.
    const handles = Array.from({ length: 4 * depth }, (_, i) => fast.run(i === 0 ? { ...tiny(0), input: echoInput(0xffffffff, u32s(0)) } : tiny(i)));
    await sent();
    handles[0]!.cancel("test");
    expect((await handles[0]!.promise.catch((e) => e)).code).toBe("CANCELLED");
    const results = await Promise.all(handles.slice(1).map((h) => h.promise));
    results.forEach((r, j) => expect(u32At(r.output, 4)).toBe(j + 1));
    const after = fast.getStats();
    expect(after.restarts).toBe(before.restarts + 1);
    expect(after.requeued - before.requeued).toBe(depth - 1);
    expect(after.completed - before.completed).toBe(4 * depth - 1);
  });
});

describe("worker pool replies", () => {
  // Workers that hold every reply until the tasks of their message are done, so which replies
  // are still inside a worker is known exactly.
  let held: WorkerPool;
  const tiny = (i: number): PoolTask => ({ kernelId: "echo", module: echo, input: echoInput(0, u32s(i)), timeoutMs: 30_000, memoryLimitBytes: MiB });
  const endless = (timeoutMs: number): PoolTask => ({ ...tiny(0), input: echoInput(0xffffffff, u32s(0)), timeoutMs });

  beforeAll(async () => {
    held = new WorkerPool({ size: 2, replyHoldMs: 60_000 });
    for (let round = 0; round < 100 && held.pipelineDepth("echo") < 8; round++) {
      await Promise.all(Array.from({ length: 50 }, (_, i) => held.run(tiny(i)).promise));
    }
    expect(held.pipelineDepth("echo")).toBeGreaterThanOrEqual(8);
  });

  afterAll(async () => {
    await held?.close();
  });

  it("answers the tasks of one message with one message", async () => {
    const depth = held.pipelineDepth("echo");
    const before = held.getStats();
    const results = await Promise.all(Array.from({ length: 2 * depth }, (_, i) => held.run(tiny(i)).promise));
    results.forEach((r, i) => expect(u32At(r.output, 4)).toBe(i));
    const after = held.getStats();
    // Two idle workers: one message of `depth` tasks to each, and one answer from each.
    expect(after.messagesSent - before.messagesSent).toBe(2);
    expect(after.messagesReceived - before.messagesReceived).toBe(2);
  });

  it("times out the task a worker is really running, behind a finished one whose reply it still holds", async () => {
    const before = held.getStats();
    // Tasks alternate between the idle workers: the endless one runs on the first, right after task 0.
    const first = held.run(tiny(0));
    const second = held.run(tiny(1));
    const stuck = held.run(endless(300));
    const err = await stuck.promise.catch((e) => e);
    expect(err).toBeInstanceOf(TaskFailure);
    expect(err.code).toBe("TIMEOUT");
    // Task 0 finished, but its reply died with the worker: it went back to the queue and ran again.
    expect(u32At((await first.promise).output, 4)).toBe(0);
    expect(u32At((await second.promise).output, 4)).toBe(1);
    const after = held.getStats();
    expect(after.restarts - before.restarts).toBe(1);
    expect(after.requeued - before.requeued).toBe(1);
    expect(after.failed - before.failed).toBe(1);
  });

  it("cancels the task a worker is really running, behind a finished one whose reply it still holds", async () => {
    const before = held.getStats();
    const first = held.run(tiny(0));
    const second = held.run(tiny(1));
    const stuck = held.run(endless(60_000));
    // Task 0 takes microseconds: by now the worker has long been running the endless task.
    await new Promise((r) => setTimeout(r, 200));
    stuck.cancel("test");
    expect((await stuck.promise.catch((e) => e)).code).toBe("CANCELLED");
    // Stopped at once (not left to run out its minute), and task 0 ran again elsewhere.
    expect(held.getStats().restarts - before.restarts).toBe(1);
    expect(u32At((await first.promise).output, 4)).toBe(0);
    expect(u32At((await second.promise).output, 4)).toBe(1);
    expect(held.getStats()).toMatchObject({ running: 0, queued: 0 });
  });
});

describe("worker activity counts", () => {
  it("tell how many finished tasks are not heard of yet, also once the counts wrap past 2³¹", () => {
    const activity = new WorkerActivity();
    activity.begin(7, epochMs());
    expect(activity.running()?.id).toBe(7);
    activity.end();
    expect(activity.running()).toBeUndefined();
    expect(unheardCount(activity.finished, 0)).toBe(1);
    // Int32 counts, as Atomics.add leaves the worker's: it has wrapped, the pool's count not yet.
    const nearMax = 2 ** 31 - 2;
    expect(unheardCount((nearMax + 5) | 0, nearMax)).toBe(5);
    expect(unheardCount((nearMax + 5) | 0, (nearMax + 5) | 0)).toBe(0);
  });
});

describe("memory reuse", () => {
  let scribble: WebAssembly.Module;

  beforeAll(async () => {
    // Reports the non-zero bytes it finds in its free memory, then writes over all of it.
    const outDir = await mkdtemp(path.join(os.tmpdir(), "distx-scribble-"));
    const { wasmPath } = await buildKernel(path.join(repoRoot(), "test", "fixtures", "kernels", "scribble.ts"), { outDir });
    scribble = await compileWasmKernel(await readFile(wasmPath));
  });

  const scan = (output: ArrayBuffer | Uint8Array) => {
    const b = output instanceof Uint8Array ? output : new Uint8Array(output);
    return { nonZero: u32At(b, 0), scanned: u32At(b, 4) };
  };

  it("hands a task a zeroed memory: nothing a previous task wrote is visible, traps included", () => {
    const memories = new MemoryPool();
    const run = (...input: number[]) => runWasmKernel(scribble, u32s(...input), { memoryLimitBytes: MiB, memoryPool: memories });
    for (let i = 0; i < 5; i++) {
      const r = scan(run(0));
      expect(r.nonZero).toBe(0);
      expect(r.scanned).toBeGreaterThan(64 * 1024);
    }
    expect(memories.created).toBe(1);
    expect(memories.reused).toBe(4);
    // A task that scribbles and then traps: its memory is zeroed before the next task gets it.
    expect(() => run(0, 1)).toThrow(/scribbled, then trapped/);
    expect(scan(run(0)).nonZero).toBe(0);
    expect(memories.reused).toBe(6);
  });

  it("in the pool's workers, pipelined tasks never see each other's memory", async () => {
    const one = new WorkerPool({ size: 1 });
    try {
      const task = (): PoolTask => ({ kernelId: "scribble", module: scribble, input: u32s(0), timeoutMs: 30_000, memoryLimitBytes: MiB });
      for (let round = 0; round < 10; round++) {
        const results = await Promise.all(Array.from({ length: 50 }, () => one.run(task()).promise));
        for (const r of results) expect(scan(r.output).nonZero).toBe(0);
      }
      expect(one.getStats().completed).toBe(500);
    } finally {
      await one.close();
    }
  });
});

describe("WebAssembly tier", () => {
  it("runs kernels in V8's optimizing tier, not Liftoff", async () => {
    // %IsLiftoffFunction needs --allow-natives-syntax, so this runs in a child process that
    // applies the agent's tier setting and then inspects a kernel function after a call.
    const script = `
      import { useOptimizingWasmTier } from ${JSON.stringify(path.join(repoRoot(), "agent/wasm/tier.ts"))};
      import { readFileSync } from "node:fs";
      const mode = process.argv.at(-1);
      if (mode === "agent") useOptimizingWasmTier();
      const bytes = readFileSync(${JSON.stringify(path.join(repoRoot(), "build/kernels/saxpy.wasm"))});
      const memory = new WebAssembly.Memory({ initial: 1, maximum: 4 });
      const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory, abort() { throw new Error("abort"); } } });
      const f = inst.exports.distx_run;
      const p = inst.exports.distx_alloc(16);
      new DataView(memory.buffer).setUint32(p + 4, 0, true);
      f(p, 8);
      console.log(JSON.stringify({ liftoff: %IsLiftoffFunction(f) }));
    `;
    const run = (mode: string) =>
      JSON.parse(
        execFileSync(process.execPath, ["--allow-natives-syntax", "--import", "tsx", "--input-type=module", "-e", script, "--", mode], {
          cwd: repoRoot(),
          encoding: "utf8",
        }).trim(),
      ) as { liftoff: boolean };
    expect(run("default").liftoff).toBe(true); // V8's default: baseline first
    expect(run("agent").liftoff).toBe(false); // the agent's setting: optimized from the first call
  });
});
