// Everything GPU the agent does, behind one object: find the GPUs (systeminformation +
// nvidia-smi), start the executors (which really open a GL context, or fall back to gpu.js
// cpu mode), calibrate the GPU backend on the gemm example, describe it in the profile, and
// run GPU assignments. agent.ts only calls into this.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "../../common/logger.js";
import { builtKernelsDir } from "../../common/paths.js";
import type { HardwareProfileIn } from "../../common/types.js";
import { gemm } from "../../kernels/reference/gemm.js";
import { TaskFailure } from "../pool/types.js";
import { GpuUtilizationSampler, readNvidiaSmi, type NvidiaGpu } from "./detect.js";
import { GpuExecutorPool, type GpuHandle } from "./executor-pool.js";
import type { SandboxPlan } from "./sandbox.js";
import type { ExecutorReady, GpuMode } from "./protocol.js";

export interface GpuSupportOptions {
  mode: GpuMode;
  memoryLimitMb: number;
  calibrate: boolean;
}

export class GpuSupport {
  pool?: GpuExecutorPool;
  ready?: ExecutorReady;
  nvidia?: NvidiaGpu[];
  private readonly sampler = new GpuUtilizationSampler();
  private readonly modules = new Map<string, Uint8Array>();

  constructor(
    private readonly options: GpuSupportOptions,
    private readonly log: Logger,
    private readonly fetchKernel: (id: string) => Promise<Uint8Array>,
  ) {}

  /** Starts the executors and fills in the profile's GPU fields. A failure leaves GPU kernels off, never the agent. */
  async start(profile: HardwareProfileIn): Promise<void> {
    this.nvidia = await readNvidiaSmi();
    if (this.nvidia?.length) {
      // nvidia-smi knows memory exactly; it replaces systeminformation's NVIDIA entries.
      const others = (profile.gpus ?? []).filter((g) => !/nvidia/i.test(`${g.vendor} ${g.model}`));
      profile.gpus = [
        ...this.nvidia.map((g) => ({ vendor: "NVIDIA", model: g.name, memoryBytes: String(g.memoryTotalBytes), memoryUsedBytes: String(g.memoryUsedBytes), utilization: g.utilization })),
        ...others,
      ];
      this.sampler.start();
    }
    const executors = this.options.mode === "cpu" ? 1 : Math.max(1, profile.gpus?.length ?? 0);
    const pool = new GpuExecutorPool({ mode: this.options.mode, executors, memoryLimitMb: this.options.memoryLimitMb });
    pool.on("executor_ready", (index: number, pid: number, r: ExecutorReady) =>
      this.log.info({ event: "gpu_executor_ready", executor: index, pid, backend: r.backend, renderer: r.renderer }, "gpu executor ready"),
    );
    pool.on("executor_exit", (index: number, why: string) => this.log.warn({ event: "gpu_executor_exit", executor: index, reason: why }, "gpu executor exited; restarting it"));
    pool.on("executor_error", (index: number, why: string) => this.log.error({ event: "gpu_executor_error", executor: index, reason: why }, "gpu executor failed to restart"));
    // The sandbox's walls, once per change: each one that is down is its own warning line.
    pool.on("sandbox", (plan: SandboxPlan) => {
      this.log.info({ event: "gpu_sandbox", walls: Object.fromEntries(plan.walls.map((w) => [w.name, w.on])) }, "gpu executor sandbox");
      for (const w of plan.walls.filter((x) => !x.on)) {
        this.log.warn({ event: "gpu_sandbox_wall_down", wall: w.name, reason: w.detail }, `gpu executor sandbox: the ${w.name} wall is unavailable: ${w.detail}`);
      }
    });
    try {
      this.ready = await pool.start();
      this.pool = pool;
    } catch (err) {
      this.log.error({ event: "gpu_unavailable", err: (err as Error).message }, "gpu.js executor cannot start; GPU kernels are off on this agent");
      await pool.close();
      profile.gpuBackend = "";
      return;
    }
    profile.gpuBackend = this.ready.backend;
    profile.gpuRenderer = this.ready.renderer;
    profile.gpuExecutors = pool.size;
    if (this.ready.backend === "headlessgl") profile.kernelKinds = [...(profile.kernelKinds ?? []), "KERNEL_KIND_GPU"];
    if (this.options.calibrate) {
      try {
        profile.gpuCalibration = await this.calibrate();
      } catch (err) {
        this.log.warn({ event: "gpu_calibration_failed", err: (err as Error).message }, "gpu calibration failed");
      }
    }
    this.log.info(
      {
        event: "gpu_profiled",
        backend: this.ready.backend,
        renderer: this.ready.renderer,
        glError: this.ready.glError,
        executors: pool.size,
        gpus: profile.gpus?.length ?? 0,
        gpuOpsPerSecond: profile.gpuCalibration?.opsPerSecond,
      },
      this.ready.backend === "headlessgl" ? "GPU backend usable" : "no usable GL: GPU kernels run here only in gpu.js cpu mode, for jobs that allow it",
    );
  }

  /** Times the gpu gemm example (256³) on the executor: the GPU backend's speed for placement. */
  private async calibrate(): Promise<{ kernel: string; opsPerSecond: number; wallMs: number }> {
    const started = performance.now();
    const bytes = await readFile(path.join(builtKernelsDir(), "gemm_gpu.gpu.json"));
    const kernelId = createHash("sha256").update(bytes).digest("hex");
    const n = 256;
    const [input] = gemm.makeTasks({ tasks: 1, size: n });
    const once = async () => (await this.pool!.run({ kernelId, module: bytes, input: input!, timeoutMs: 60_000 }).promise).runMs;
    await once(); // compiles the shader
    const samples = [await once(), await once(), await once()].sort((a, b) => a - b);
    return { kernel: `gemm_gpu/${n}`, opsPerSecond: (2 * n * n * n) / (samples[1]! / 1000), wallMs: performance.now() - started };
  }

  private async moduleBytes(kernelId: string): Promise<Uint8Array> {
    const cached = this.modules.get(kernelId);
    if (cached) return cached;
    const bytes = await this.fetchKernel(kernelId);
    if (createHash("sha256").update(bytes).digest("hex") !== kernelId) throw new TaskFailure("INVALID_KERNEL", `kernel ${kernelId} bytes do not match their id`);
    this.modules.set(kernelId, bytes);
    return bytes;
  }

  /** Runs one GPU assignment on an executor. */
  async run(a: { kernelId: string; input: Uint8Array; timeoutMs: number }, onStart: (waitMs: number) => void, onHandle: (h: GpuHandle) => void): Promise<{ output: Buffer; runMs: number; waitMs: number; backend: string }> {
    if (!this.pool) throw new TaskFailure("INVALID_KERNEL", "this agent cannot run gpu.js kernels (its executor did not start)");
    const module = await this.moduleBytes(a.kernelId);
    const handle = this.pool.run({ kernelId: a.kernelId, module, input: a.input, timeoutMs: a.timeoutMs, onStart });
    onHandle(handle);
    return handle.promise;
  }

  get utilization(): number {
    return this.sampler.value;
  }

  stats(): { running: number; queued: number } {
    return this.pool?.stats() ?? { running: 0, queued: 0 };
  }

  async idle(): Promise<void> {
    await this.pool?.idle();
  }

  async close(): Promise<void> {
    this.sampler.stop();
    await this.pool?.close();
  }
}
