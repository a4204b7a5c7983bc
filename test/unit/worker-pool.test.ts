// The agent's kernel worker pool, on real worker threads and real compiled kernels.
import { execFileSync } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TaskFailure, WorkerPool } from "../../agent/pool/worker-pool.js";
import { compileWasmKernel } from "../../common/kernel-abi.js";
import { repoRoot } from "../../common/paths.js";
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
    await new Promise((r) => setTimeout(r, 100));
    expect(pool.getStats()).toMatchObject({ running: 2, queued: 1 });
    queued.cancel("test");
    for (const h of running) h.cancel("test");
    for (const h of [...running, queued]) expect((await h.promise.catch((e) => e)).code).toBe("CANCELLED");
    await pool.idle();
    expect(pool.getStats()).toMatchObject({ running: 0, queued: 0 });
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
