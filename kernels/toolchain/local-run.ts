// A kernel run on this machine in the agent's own sandbox: the same ABI check as RegisterKernel
// (compileWasmKernel), the same worker pool and kernel worker as an agent (agent/pool: a fresh
// instance per task, an imported Memory capped at the task's limit, a wall-clock timeout that
// terminates the worker, TurboFan only), with the agent's defaults for the caps. Nothing here
// re-implements a part of the sandbox: `distx kernel run` and `distx kernel test` go through it.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { compileWasmKernel, KernelAbiError } from "../../common/kernel-abi.js";
import { TaskFailure, WorkerPool, type PoolResult } from "../../agent/pool/worker-pool.js";
import { DEFAULT_KERNEL_LOG_BYTES, DEFAULT_KERNEL_LOG_LINES } from "../../common/kernel-log.js";

/** The agent's defaults: `memoryLimitMb` (common/config.ts) and a task's timeout when its job sets none (agent/task-runner.ts). */
export const DEFAULT_MEMORY_MB = 256;
export const DEFAULT_TIMEOUT_MS = 60_000;

export interface LocalRunOptions {
  memoryMb?: number;
  timeoutMs?: number;
}

/** `logs`: the kernel's env.log lines, capped as an agent with its defaults caps them (on failure too). */
export type LocalOutcome = ({ ok: true } & PoolResult) | { ok: false; code: string; message: string; logs?: string[] };

export class LocalSandbox {
  private constructor(
    private readonly pool: WorkerPool,
    private readonly module: WebAssembly.Module,
    readonly kernelId: string,
    private readonly memoryLimitBytes: number,
    private readonly timeoutMs: number,
  ) {}

  /** Checks the kernel as RegisterKernel does (KernelAbiError says why not) and starts one worker. */
  static async open(wasmPath: string, opts: LocalRunOptions = {}): Promise<LocalSandbox> {
    const bytes = new Uint8Array(await readFile(wasmPath));
    const module = await compileWasmKernel(bytes);
    const memoryMb = opts.memoryMb ?? DEFAULT_MEMORY_MB;
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(Number.isInteger(memoryMb) && memoryMb >= 1 && memoryMb <= 65_536)) throw new RangeError(`--memory-mb must be 1..65536, got ${memoryMb}`);
    if (!(Number.isInteger(timeoutMs) && timeoutMs >= 1)) throw new RangeError(`--timeout-ms must be a positive whole number, got ${timeoutMs}`);
    const id = createHash("sha256").update(bytes).digest("hex");
    // One worker, no pipelining: each task alone, exactly as a first run on an agent.
    return new LocalSandbox(new WorkerPool({ size: 1, maxPipelineDepth: 1 }), module, id, memoryMb * 1024 * 1024, timeoutMs);
  }

  async run(input: Uint8Array, seed: number): Promise<LocalOutcome> {
    const log = { maxBytes: DEFAULT_KERNEL_LOG_BYTES, maxLines: DEFAULT_KERNEL_LOG_LINES };
    const handle = this.pool.run({ kernelId: this.kernelId, module: this.module, input, seed, timeoutMs: this.timeoutMs, memoryLimitBytes: this.memoryLimitBytes, log });
    try {
      return { ok: true, ...(await handle.promise) };
    } catch (err) {
      if (err instanceof TaskFailure) return { ok: false, code: err.code, message: err.message, ...(err.logs ? { logs: err.logs } : {}) };
      throw err;
    }
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

export { KernelAbiError };
