// The agent's side of GPU execution: one executor child process per GPU (one when there is
// none), a queue in front of them, per-task timeouts, and restarts. An executor that dies or
// hangs fails only the task it was running (EXECUTOR_LOST, which the scheduler retries; or
// TIMEOUT); queued tasks wait for the restarted executor.
import type { ChildProcess } from "node:child_process";
import { EventEmitter } from "node:events";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { TaskFailure, type PoolResult, type TaskHandle } from "../pool/types.js";
import { executorLaunch, executorScript } from "./executor-launch.js";
import type { ExecutorReady, FromExecutor, GpuBackend, GpuMode, ToExecutor } from "./protocol.js";
import { launchSandboxed, type SandboxPlan } from "./sandbox.js";

export { executorEnv, executorLaunch, executorScript } from "./executor-launch.js";

export interface GpuTask {
  kernelId: string;
  module: Uint8Array;
  input: Uint8Array;
  timeoutMs: number;
  onStart?: (waitMs: number) => void;
}

export interface GpuResult extends PoolResult {
  backend: GpuBackend;
}

export type GpuHandle = TaskHandle<GpuResult>;

export interface GpuPoolOptions {
  mode: GpuMode;
  /** Executor processes; one per GPU. */
  executors: number;
  /** V8 heap cap of each executor, MiB. */
  memoryLimitMb: number;
  /** How long an executor may take to open GL and self-test. */
  startTimeoutMs?: number;
  /** RLIMIT_AS of each executor, MiB (default: heap + 3 GiB in cpu mode, heap + 16 GiB with GL, whose drivers reserve large ranges). */
  addressSpaceMb?: number;
  /** RLIMIT_CPU of each executor, seconds over its life (default 3600); past it the executor is killed and restarted, failing its task as WORKER_CRASHED. */
  cpuSeconds?: number;
}

interface Pending {
  id: number;
  task: GpuTask;
  enqueuedAt: number;
  resolve(r: GpuResult): void;
  reject(e: TaskFailure): void;
  settled: boolean;
  executor?: Executor;
  timer?: NodeJS.Timeout;
}

class Executor {
  child?: ChildProcess;
  ready?: ExecutorReady;
  current?: Pending;
  workDir = "";
  restarts = 0;
  private starting?: Promise<ExecutorReady>;

  constructor(
    readonly index: number,
    private readonly pool: GpuExecutorPool,
  ) {}

  start(mode: GpuMode): Promise<ExecutorReady> {
    if (this.starting) return this.starting;
    this.starting = new Promise<ExecutorReady>((resolve, reject) => {
      this.workDir = mkdtempSync(path.join(os.tmpdir(), `distx-gpu-${this.index}-`));
      // The executor may run as another (unprivileged) user: it may enter its cwd, not list or write it.
      chmodSync(this.workDir, 0o711);
      const { child, plan } = launchSandboxed(executorLaunch(executorScript(), mode, this.pool.options, this.workDir));
      this.pool.noteSandbox(plan);
      this.child = child;
      let stderr = "";
      child.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
      child.stdout?.resume();
      // An IPC write to a child that died a moment ago fails with EPIPE here; its exit handler
      // settles the task, so the error only needs to not go unhandled.
      child.on("error", (err) => this.pool.emit("executor_error", this.index, err.message));
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`gpu executor did not start within ${this.pool.options.startTimeoutMs ?? 60_000} ms`));
      }, this.pool.options.startTimeoutMs ?? 60_000);
      child.on("message", (msg: FromExecutor) => {
        if (msg.type === "ready") {
          clearTimeout(timer);
          this.ready = msg;
          resolve(msg);
          this.pool.emit("executor_ready", this.index, child.pid, msg);
          this.pool.pump();
        } else this.onReply(msg);
      });
      child.on("exit", (code, signal) => {
        clearTimeout(timer);
        const why = `gpu executor ${child.pid} exited (${signal ?? `code ${code}`})${stderr ? `: ${stderr.trim().split("\n").slice(-3).join(" | ")}` : ""}`;
        if (this.child === child) this.onExit(why);
        reject(new Error(why));
      });
      child.send({ type: "init", mode } satisfies ToExecutor);
    });
    return this.starting;
  }

  private onReply(msg: FromExecutor): void {
    const p = this.current;
    if (!p || msg.type === "ready" || msg.id !== p.id) return;
    this.current = undefined;
    clearTimeout(p.timer);
    if (msg.type === "result") {
      // A fresh, 0-offset buffer: callers read it as Float32Array/Uint32Array.
      this.pool.settle(p, { output: Buffer.from(new Uint8Array(msg.output).buffer), runMs: msg.runMs + msg.compileMs, waitMs: 0, backend: msg.backend });
    } else {
      this.pool.settle(p, new TaskFailure(msg.code, msg.message));
    }
    this.pool.pump();
  }

  private onExit(why: string): void {
    this.child = undefined;
    this.ready = undefined;
    this.starting = undefined;
    rmSync(this.workDir, { recursive: true, force: true });
    const p = this.current;
    this.current = undefined;
    if (p) {
      clearTimeout(p.timer);
      // Not the kernel's fault as far as we know: the scheduler retries EXECUTOR_LOST.
      this.pool.settle(p, new TaskFailure("WORKER_CRASHED", why));
    }
    if (this.pool.closed) return;
    this.restarts++;
    this.pool.emit("executor_exit", this.index, why);
    // Back off a little when it keeps dying, so a broken driver does not spin.
    const delay = Math.min(5000, 100 * 2 ** Math.min(this.restarts, 6));
    setTimeout(() => {
      if (!this.pool.closed) this.start(this.pool.mode).catch((err) => this.pool.emit("executor_error", this.index, (err as Error).message));
    }, delay).unref();
  }

  /** Kills the process; no task is handed to it again (its exit handler restarts it). */
  kill(): void {
    this.ready = undefined;
    this.child?.kill("SIGKILL");
  }

  runTask(p: Pending): void {
    this.current = p;
    p.executor = this;
    p.task.onStart?.(performance.now() - p.enqueuedAt);
    p.timer = setTimeout(() => {
      if (this.current !== p) return;
      this.current = undefined;
      this.pool.settle(p, new TaskFailure("TIMEOUT", `gpu kernel ran past its ${p.task.timeoutMs} ms timeout; its executor was restarted`));
      this.kill();
    }, p.task.timeoutMs);
    const child = this.child!;
    // The child may have died without its exit event having arrived yet (a SIGKILL from outside):
    // the send then fails, and killing it makes sure the exit handler runs and fails this task
    // as WORKER_CRASHED (retryable) instead of leaving it waiting for its timeout.
    child.send({ type: "run", id: p.id, kernelId: p.task.kernelId, module: p.task.module, input: p.task.input } satisfies ToExecutor, (err) => {
      if (err && this.child === child) child.kill("SIGKILL");
    });
  }
}

export interface GpuPoolStats {
  executors: number;
  running: number;
  queued: number;
  restarts: number;
}

export class GpuExecutorPool extends EventEmitter {
  private readonly executors: Executor[];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  closed = false;
  mode: GpuMode;
  /** The walls of the last executor launched (agent/gpu/sandbox.ts). */
  sandbox?: SandboxPlan;
  private sandboxKey = "";

  constructor(readonly options: GpuPoolOptions) {
    super();
    this.mode = options.mode;
    this.executors = Array.from({ length: Math.max(1, options.executors) }, (_, i) => new Executor(i, this));
  }

  /**
   * Starts every executor and returns what the first one found. With mode auto, an executor
   * that dies while probing GL (a driver crash) is started again in cpu mode.
   */
  async start(): Promise<ExecutorReady> {
    try {
      const ready = await Promise.all(this.executors.map((e) => e.start(this.mode)));
      return ready[0]!;
    } catch (err) {
      if (this.mode !== "auto") throw err;
      const glError = `GL probe crashed the executor: ${(err as Error).message}`;
      this.mode = "cpu";
      for (const e of this.executors) e.kill();
      await new Promise((r) => setTimeout(r, 200));
      const ready = await Promise.all(this.executors.map((e) => e.start("cpu")));
      return { ...ready[0]!, glError };
    }
  }

  /**
   * @internal Records the walls of a launch; emits "sandbox" (the plan) when they differ from the
   * last launch's, so the agent logs them once, and an unavailable wall never goes unsaid.
   */
  noteSandbox(plan: SandboxPlan): void {
    this.sandbox = plan;
    const key = plan.walls.map((w) => `${w.name}:${w.on}:${w.detail}`).join("|");
    if (key === this.sandboxKey) return;
    this.sandboxKey = key;
    this.emit("sandbox", plan);
  }

  get size(): number {
    return this.executors.length;
  }

  /** PIDs of the executor processes (for operators and tests). */
  pids(): number[] {
    return this.executors.map((e) => e.child?.pid ?? 0);
  }

  run(task: GpuTask): GpuHandle {
    let pending!: Pending;
    const promise = new Promise<GpuResult>((resolve, reject) => {
      pending = { id: this.nextId++, task, enqueuedAt: performance.now(), resolve, reject, settled: false };
    });
    if (this.closed) {
      pending.reject(new TaskFailure("SHUTDOWN", "the gpu executors are shutting down"));
      return { promise, cancel: () => undefined };
    }
    this.queue.push(pending);
    this.pump();
    return {
      promise,
      cancel: (reason = "cancelled") => {
        if (pending.settled) return;
        const i = this.queue.indexOf(pending);
        if (i >= 0) this.queue.splice(i, 1);
        const ex = pending.executor;
        this.settle(pending, new TaskFailure("CANCELLED", reason));
        // A running GL kernel cannot be interrupted: restart its executor.
        if (ex && ex.current === pending) {
          ex.current = undefined;
          ex.kill();
        }
      },
    };
  }

  /** @internal */
  settle(p: Pending, outcome: GpuResult | TaskFailure): void {
    if (p.settled) return;
    p.settled = true;
    clearTimeout(p.timer);
    if (outcome instanceof TaskFailure) p.reject(outcome);
    else p.resolve({ ...outcome, waitMs: 0 });
  }

  /** @internal Hands queued tasks to idle, ready executors. */
  pump(): void {
    for (const ex of this.executors) {
      if (this.queue.length === 0) return;
      if (!ex.ready || ex.current || !ex.child) continue;
      ex.runTask(this.queue.shift()!);
    }
  }

  stats(): GpuPoolStats {
    return {
      executors: this.executors.length,
      running: this.executors.filter((e) => e.current).length,
      queued: this.queue.length,
      restarts: this.executors.reduce((s, e) => s + e.restarts, 0),
    };
  }

  async idle(): Promise<void> {
    while (this.queue.length > 0 || this.executors.some((e) => e.current)) await new Promise((r) => setTimeout(r, 50));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) this.settle(p, new TaskFailure("SHUTDOWN", "the gpu executors are shutting down"));
    await Promise.all(
      this.executors.map(
        (e) =>
          new Promise<void>((resolve) => {
            const c = e.child;
            if (!c || c.exitCode !== null) return resolve();
            c.once("exit", () => resolve());
            c.disconnect?.();
            setTimeout(() => c.kill("SIGKILL"), 2000).unref();
          }),
      ),
    );
  }
}
