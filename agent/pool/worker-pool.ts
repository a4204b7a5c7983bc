// A pool of kernel worker threads, sized to the cores. One task runs per worker at a time,
// so a wall-clock timeout can stop exactly that task: the only way to stop a runaway kernel
// is to terminate its worker, which the pool then replaces.
import { EventEmitter } from "node:events";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { KernelFailureCode } from "../wasm/run-kernel.js";
import type { RunRequest, RunResponse } from "./messages.js";

export type TaskFailureCode = KernelFailureCode | "TIMEOUT" | "CANCELLED" | "WORKER_CRASHED" | "SHUTDOWN";

export class TaskFailure extends Error {
  override readonly name = "TaskFailure";
  constructor(
    readonly code: TaskFailureCode,
    message: string,
  ) {
    super(message);
  }
}

export interface PoolTask {
  kernelId: string;
  module: WebAssembly.Module;
  input: Uint8Array;
  timeoutMs: number;
  memoryLimitBytes: number;
  seed?: number;
  /** Called when a worker picks the task up (after `waitMs` in the queue). */
  onStart?: (waitMs: number) => void;
}

export interface PoolResult {
  output: Buffer;
  runMs: number;
  waitMs: number;
}

export interface PoolHandle {
  readonly promise: Promise<PoolResult>;
  cancel(reason?: string): void;
}

interface Pending {
  id: number;
  task: PoolTask;
  enqueuedAt: number;
  startedAt: number;
  resolve(result: PoolResult): void;
  reject(err: TaskFailure): void;
  slot?: Slot;
  timer?: NodeJS.Timeout;
  settled: boolean;
}

interface Slot {
  worker: Worker;
  kernels: Set<string>;
  current?: Pending;
}

export interface WorkerPoolOptions {
  size: number;
  /** JS heap cap per worker; WebAssembly memory is capped separately by each instance's maximum. */
  maxOldGenerationSizeMb?: number;
  /** Testing aid: each run takes 1/speedFactor as long (the worker stays busy for the extra time). Default 1. */
  speedFactor?: number;
}

export interface PoolStats {
  size: number;
  running: number;
  queued: number;
  completed: number;
  failed: number;
  restarts: number;
}

/** Large inputs move to the worker by transfer instead of a copy when they own their buffer. */
const TRANSFER_THRESHOLD_BYTES = 64 * 1024;

function workerEntry(): { source: URL | string; eval: boolean } {
  const js = new URL("./kernel-worker.js", import.meta.url);
  if (existsSync(fileURLToPath(js))) return { source: js, eval: false };
  // Running from TypeScript sources (vitest, tsx): register tsx in the worker, then load the .ts worker.
  const ts = new URL("./kernel-worker.ts", import.meta.url).href;
  return {
    source: `import("tsx/esm/api").then((m) => { m.register(); return import(${JSON.stringify(ts)}); })`,
    eval: true,
  };
}

export class WorkerPool extends EventEmitter {
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closed = false;
  private readonly stats = { completed: 0, failed: 0, restarts: 0 };
  private readonly entry = workerEntry();

  constructor(private readonly options: WorkerPoolOptions) {
    super();
    if (!Number.isInteger(options.size) || options.size < 1) throw new RangeError(`pool size must be ≥ 1, got ${options.size}`);
    for (let i = 0; i < options.size; i++) this.slots.push(this.spawn());
  }

  get size(): number {
    return this.slots.length;
  }

  getStats(): PoolStats {
    return {
      size: this.slots.length,
      running: this.slots.filter((s) => s.current).length,
      queued: this.queue.length,
      ...this.stats,
    };
  }

  run(task: PoolTask): PoolHandle {
    let pending!: Pending;
    const promise = new Promise<PoolResult>((resolve, reject) => {
      pending = { id: this.nextId++, task, enqueuedAt: performance.now(), startedAt: 0, resolve, reject, settled: false };
    });
    if (this.closed) {
      this.settle(pending, new TaskFailure("SHUTDOWN", "the agent is shutting down"));
    } else {
      this.queue.push(pending);
      this.pump();
    }
    return { promise, cancel: (reason = "cancelled") => this.cancel(pending, reason) };
  }

  /** Resolves once nothing is running or queued. */
  async idle(): Promise<void> {
    while (this.queue.length > 0 || this.slots.some((s) => s.current)) {
      await new Promise((r) => this.once("settled", r));
    }
  }

  /** Stops every worker; anything still queued or running fails with SHUTDOWN. */
  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) this.settle(p, new TaskFailure("SHUTDOWN", "the agent is shutting down"));
    await Promise.all(
      this.slots.map(async (slot) => {
        if (slot.current) this.settle(slot.current, new TaskFailure("SHUTDOWN", "the agent is shutting down"));
        await slot.worker.terminate();
      }),
    );
  }

  private spawn(): Slot {
    const worker = new Worker(this.entry.source, {
      eval: this.entry.eval,
      resourceLimits: { maxOldGenerationSizeMb: this.options.maxOldGenerationSizeMb ?? 128 },
      workerData: { speedFactor: this.options.speedFactor ?? 1 },
      stdout: false,
      stderr: false,
    });
    const slot: Slot = { worker, kernels: new Set() };
    worker.on("message", (msg: RunResponse) => this.onMessage(slot, msg));
    worker.on("error", (err) => this.onWorkerDeath(slot, `worker crashed: ${err.message}`));
    worker.on("exit", (code) => {
      if (!this.closed && this.slots.includes(slot)) this.onWorkerDeath(slot, `worker exited with code ${code}`);
    });
    worker.unref();
    return slot;
  }

  private replace(slot: Slot): void {
    const index = this.slots.indexOf(slot);
    if (index < 0) return;
    this.stats.restarts++;
    slot.worker.removeAllListeners();
    void slot.worker.terminate();
    if (this.closed) {
      this.slots.splice(index, 1);
      return;
    }
    this.slots[index] = this.spawn();
    this.emit("restart");
  }

  private onWorkerDeath(slot: Slot, reason: string): void {
    const current = slot.current;
    slot.current = undefined;
    if (current) this.settle(current, new TaskFailure("WORKER_CRASHED", reason));
    this.replace(slot);
    this.pump();
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (slot.current) continue;
      const pending = this.queue.shift()!;
      this.start(slot, pending);
    }
  }

  private start(slot: Slot, pending: Pending): void {
    const { task } = pending;
    slot.current = pending;
    pending.slot = slot;
    pending.startedAt = performance.now();
    const input = task.input;
    const ownsBuffer = input.byteOffset === 0 && input.byteLength === input.buffer.byteLength;
    const transferable = input.byteLength >= TRANSFER_THRESHOLD_BYTES && ownsBuffer && input.buffer instanceof ArrayBuffer;
    // new Uint8Array(view) copies; Buffer#slice would not (it returns a view of a shared pool).
    const buffer = transferable ? (input.buffer as ArrayBuffer) : new Uint8Array(input).buffer;
    const req: RunRequest = {
      type: "run",
      id: pending.id,
      kernelId: task.kernelId,
      input: buffer,
      inputOffset: 0,
      inputLength: input.byteLength,
      memoryLimitBytes: task.memoryLimitBytes,
      seed: task.seed ?? pending.id,
    };
    if (!slot.kernels.has(task.kernelId)) {
      req.module = task.module;
      slot.kernels.add(task.kernelId);
    }
    pending.timer = setTimeout(() => {
      if (slot.current !== pending) return;
      slot.current = undefined;
      this.settle(pending, new TaskFailure("TIMEOUT", `task exceeded its timeout of ${task.timeoutMs} ms; its worker was stopped`));
      this.replace(slot);
      this.pump();
    }, task.timeoutMs);
    slot.worker.postMessage(req, [buffer]);
    task.onStart?.(pending.startedAt - pending.enqueuedAt);
  }

  private onMessage(slot: Slot, msg: RunResponse): void {
    const pending = slot.current;
    if (!pending || pending.id !== msg.id) return; // a late reply for a task already settled
    slot.current = undefined;
    if (msg.type === "done") {
      this.settle(pending, undefined, {
        output: Buffer.from(msg.output),
        runMs: msg.runMs,
        waitMs: pending.startedAt - pending.enqueuedAt,
      });
    } else {
      this.settle(pending, new TaskFailure(msg.code, msg.message));
    }
    this.pump();
  }

  private cancel(pending: Pending, reason: string): void {
    if (pending.settled) return;
    const queued = this.queue.indexOf(pending);
    if (queued >= 0) {
      this.queue.splice(queued, 1);
      this.settle(pending, new TaskFailure("CANCELLED", reason));
      return;
    }
    const slot = pending.slot;
    if (slot && slot.current === pending) {
      // A running kernel cannot be interrupted: stop its worker and start a fresh one.
      slot.current = undefined;
      this.settle(pending, new TaskFailure("CANCELLED", reason));
      this.replace(slot);
      this.pump();
    }
  }

  private settle(pending: Pending, error?: TaskFailure, result?: PoolResult): void {
    if (pending.settled) return;
    pending.settled = true;
    if (pending.timer) clearTimeout(pending.timer);
    if (error) {
      this.stats.failed++;
      pending.reject(error);
    } else if (result) {
      this.stats.completed++;
      pending.resolve(result);
    }
    this.emit("settled");
  }
}
