// The GPU executor for real: the example kernels through gpu.js headlessgl (Mesa under Xvfb in
// CI) and cpu mode, against their JS references; crashes, hangs and bad kernels.
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GpuExecutorPool } from "../../../agent/gpu/executor-pool.js";
import { TaskFailure } from "../../../agent/pool/types.js";
import { gpuExamples } from "../../../kernels/gpu/reference.js";
import { mandelbrotInput } from "../../../kernels/reference/index.js";
import { encodeGpuModule, parseGpuModule } from "../../../kernels/gpu/module.js";
import { sha256Hex } from "../../../common/hash.js";
import { buildExamples, probeGl, REQUIRE_GL } from "../../helpers/gpu.js";

const examples = await buildExamples();
const gl = await probeGl();
const glUsable = gl.backend === "headlessgl";

/**
 * A tile wholly inside the set at the loop's iteration cap: every pixel runs all 100,000
 * iterations, so it runs for minutes on any machine and is still running whenever the test acts.
 */
const endless = () => mandelbrotInput({ x0: -0.2, y0: -0.2, dx: 0.0001, dy: 0.0001, width: 512, height: 512, maxIter: 100_000 });

const SIZES: Record<keyof typeof examples, number[]> = { gemm_gpu: [64, 200], mandelbrot_gpu: [128, 300] };

function runOn(pool: GpuExecutorPool, name: keyof typeof examples, input: Uint8Array, timeoutMs = 60_000) {
  const b = examples[name];
  return pool.run({ kernelId: b.manifest.sha256, module: b.bytes, input, timeoutMs }).promise;
}

describe("gpu executor, headlessgl backend", () => {
  let pool: GpuExecutorPool;
  beforeAll(async () => {
    pool = new GpuExecutorPool({ mode: "auto", executors: 1, memoryLimitMb: 1024 });
    await pool.start();
  });
  afterAll(() => pool.close());

  it("opens a real GL context (required in CI)", () => {
    if (REQUIRE_GL) expect(gl, `GL probe failed: ${gl.glError}`).toMatchObject({ backend: "headlessgl" });
    if (!glUsable) console.warn(`headlessgl not usable here (${gl.glError}); GL tests skip. Run under xvfb-run with DISTX_GPU_TESTS=require to make this fatal.`);
  });

  // Without a GL context (no X display or GL driver) headlessgl cannot run at all, so these skip,
  // with the warning above; CI sets DISTX_GPU_TESTS=require, so there they run and must pass.
  for (const name of ["gemm_gpu", "mandelbrot_gpu"] as const) {
    it.skipIf(!glUsable && !REQUIRE_GL)(`${name} matches its float32 JS reference, and headlessgl really ran it`, async () => {
      for (const size of SIZES[name]) {
        const inputs = gpuExamples[name].makeTasks({ tasks: 2, size });
        for (const input of inputs) {
          const r = await runOn(pool, name, input);
          expect(r.backend).toBe("headlessgl");
          const check = gpuExamples[name].check(input, r.output);
          expect(check.ok, `${name} size ${size}: ${check.detail}`).toBe(true);
        }
      }
    });
  }
});

describe("gpu executor, cpu mode (--gpu off)", () => {
  let pool: GpuExecutorPool;
  beforeAll(async () => {
    pool = new GpuExecutorPool({ mode: "cpu", executors: 1, memoryLimitMb: 512 });
    const ready = await pool.start();
    expect(ready.backend).toBe("cpu");
  });
  afterAll(() => pool.close());

  it("runs both examples in gpu.js cpu mode, matching the references, and says so", async () => {
    for (const name of ["gemm_gpu", "mandelbrot_gpu"] as const) {
      for (const input of gpuExamples[name].makeTasks({ tasks: 2, size: 96 })) {
        const r = await runOn(pool, name, input);
        expect(r.backend).toBe("cpu");
        expect(gpuExamples[name].check(input, r.output).ok).toBe(true);
      }
    }
  });

  it("a killed executor fails only its task (retryable) and is restarted", async () => {
    const before = pool.pids()[0]!;
    let started!: () => void;
    const startedP = new Promise<void>((r) => (started = r));
    const b = examples.mandelbrot_gpu;
    const running = pool.run({ kernelId: b.manifest.sha256, module: b.bytes, input: endless(), timeoutMs: 600_000, onStart: () => started() }).promise;
    await startedP;
    await new Promise((r) => setTimeout(r, 200));
    process.kill(before, "SIGKILL");
    const err = await running.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskFailure);
    expect((err as TaskFailure).code).toBe("WORKER_CRASHED");
    const [small] = gpuExamples.gemm_gpu.makeTasks({ tasks: 1, size: 32 });
    const again = await runOn(pool, "gemm_gpu", small!);
    expect(again.backend).toBe("cpu");
    expect(pool.pids()[0]).not.toBe(before);
    expect(pool.stats().restarts).toBeGreaterThanOrEqual(1);
  });

  it("a task handed to an executor that died a moment ago fails as WORKER_CRASHED (no stray EPIPE) and the next one runs", async () => {
    const before = pool.pids()[0]!;
    process.kill(before, "SIGKILL");
    // Hold the event loop while the kernel tears the process down, so its exit event cannot have
    // been handled yet: the task is sent to an executor that looks alive, and the IPC write fails.
    for (const end = Date.now() + 150; Date.now() < end; );
    const [small] = gpuExamples.gemm_gpu.makeTasks({ tasks: 1, size: 16 });
    const err = await runOn(pool, "gemm_gpu", small!).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskFailure);
    expect((err as TaskFailure).code).toBe("WORKER_CRASHED");
    const again = await runOn(pool, "gemm_gpu", small!);
    expect(again.backend).toBe("cpu");
    expect(pool.pids()[0]).not.toBe(before);
  });

  it("a task past its timeout fails with TIMEOUT and the executor comes back", async () => {
    const err = await runOn(pool, "mandelbrot_gpu", endless(), 200).catch((e: unknown) => e);
    expect((err as TaskFailure).code).toBe("TIMEOUT");
    const [small] = gpuExamples.gemm_gpu.makeTasks({ tasks: 1, size: 16 });
    expect((await runOn(pool, "gemm_gpu", small!)).backend).toBe("cpu");
  });

  it("refuses bytes that do not hash to the kernel id, and short inputs, as INVALID_KERNEL", async () => {
    const b = examples.gemm_gpu;
    const tampered = parseGpuModule(b.bytes);
    const bytes = encodeGpuModule({ ...tampered, source: tampered.source.replace("sum +=", "sum -=") });
    // An id this executor has not seen (ids it has verified are cached).
    const wrongId = await pool.run({ kernelId: "ab".repeat(32), module: bytes, input: new Uint8Array(16), timeoutMs: 5000 }).promise.catch((e: unknown) => e);
    expect((wrongId as TaskFailure).code).toBe("INVALID_KERNEL");
    expect((wrongId as TaskFailure).message).toMatch(/hash/);
    const okId = sha256Hex(b.bytes);
    const short = await pool.run({ kernelId: okId, module: b.bytes, input: new Uint8Array(8), timeoutMs: 5000 }).promise.catch((e: unknown) => e);
    expect((short as TaskFailure).code).toBe("INVALID_KERNEL");
    expect((short as TaskFailure).message).toMatch(/shorter than the gemm_gpu header/);
  });

  it("the executor sees no agent credentials: a minimal environment and its own temp cwd", () => {
    const pid = pool.pids()[0]!;
    const env = execFileSync("cat", [`/proc/${pid}/environ`]).toString().split("\0").filter(Boolean).map((l) => l.split("=")[0]);
    expect(env.filter((k) => k!.startsWith("DISTX_") || /TOKEN|SECRET|KEY|PASSWORD/i.test(k!))).toEqual([]);
    expect(env).toContain("HOME");
    const cwd = execFileSync("readlink", [`/proc/${pid}/cwd`]).toString().trim();
    expect(cwd).toMatch(/distx-gpu-0-/);
    const cmdline = execFileSync("cat", [`/proc/${pid}/cmdline`]).toString();
    expect(cmdline).toContain("--max-old-space-size=512");
  });
});
