// A pool of kernel worker threads, sized to the cores. One task runs per worker at a time,
// so a wall-clock timeout can stop exactly that task: the only way to stop a runaway kernel
// is to terminate its worker, which the pool then replaces.
//
// Tiny tasks are pipelined: a worker may have several tasks in flight, run in the order sent,
// so it never idles for a message round trip. A worker is topped up only once it is down to
// half its depth, and it answers several tasks per message, so messages carry tasks by the
// dozen when they are tiny. Which task a worker is running is in memory it shares with the pool
// (WorkerActivity): a timeout, a cancel or a crash stops exactly that task, and the tasks sent
// behind it go back to the front of the queue. How deep a worker's pipeline may be follows
// each kernel's measured run time (PIPELINE_BUDGET_MS), so a kernel that is not tiny, or not
// measured yet, runs one task per worker exactly as without pipelining.
import { EventEmitter } from "node:events";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { KernelFailureCode } from "../wasm/run-kernel.js";
import { epochMs, unheardCount, WorkerActivity, type FromWorker, type RunRequest, type RunResponse, type ToWorker } from "./messages.js";
import { TaskQueue } from "./task-queue.js";

export type TaskFailureCode = KernelFailureCode | "TIMEOUT" | "CANCELLED" | "WORKER_CRASHED" | "SHUTDOWN" | "KERNEL_FETCH_FAILED" | "INTERNAL";

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
  /** The worker it was sent to; unset while it waits in the pool's queue. */
  slot?: Slot;
  settled: boolean;
}

interface Slot {
  worker: Worker;
  kernels: Set<string>;
  /**
   * Tasks sent to this worker and not answered yet, in the order the worker runs them. The
   * first is the running one (the head). An entry may be settled already: a task cancelled
   * while it waited behind the head still runs on the worker, and its reply is ignored.
   */
  inFlight: Pending[];
  /** How many entries of inFlight belong to each kernel (for the pipelining depth). */
  kernelsInFlight: Map<string, number>;
  /** When to look whether the running task is past its timeout, and that moment (epoch ms). */
  timer?: NodeJS.Timeout;
  timerDue: number;
  /** Which task the worker is running now, and how many it has finished (shared with it). */
  activity: WorkerActivity;
  /**
   * Replies handled from this worker, as a wrapping 32-bit count like activity.finished: the
   * difference (see unheardCount) is how many finished tasks have not been heard of yet.
   */
  received: number;
  /** Whether this pump may add tasks behind the ones in flight (set when a pump starts). */
  refill: boolean;
  /** Requests posted during the current pump, sent together when it ends. */
  outbox: { requests: RunRequest[]; transfer: ArrayBuffer[]; small: { req: RunRequest; input: Uint8Array }[] };
}

export interface WorkerPoolOptions {
  size: number;
  /** JS heap cap per worker; WebAssembly memory is capped separately by each instance's maximum. */
  maxOldGenerationSizeMb?: number;
  /** Testing aid: each run takes 1/speedFactor as long (the worker stays busy for the extra time). Default 1. */
  speedFactor?: number;
  /**
   * Most tasks one worker may have in flight (the running one included) when they are tiny.
   * 1 turns pipelining off: one task per worker, the next sent when its reply arrives. Default 64.
   */
  maxPipelineDepth?: number;
  /**
   * Longest a worker holds a finished task's reply so that it goes back with the next ones
   * (default 1 ms); it always answers once the tasks of one message are done.
   */
  replyHoldMs?: number;
}

export interface PoolStats {
  size: number;
  /** Tasks running now: one per busy worker. */
  running: number;
  /** Tasks waiting: in the pool's queue, or sent to a worker behind its running task. */
  queued: number;
  completed: number;
  failed: number;
  restarts: number;
  /** Tasks sent to a worker that already had a task in flight (pipelined), since the pool started. */
  pipelined: number;
  /** The most tasks one worker has had in flight at once, since the pool started. */
  maxInFlight: number;
  /**
   * Tasks sent back to the front of the queue because their worker was stopped: never started,
   * or finished with their reply still in the worker (those run again).
   */
  requeued: number;
  /** Messages posted to workers, and received from them, since the pool started (each carries one task or more). */
  messagesSent: number;
  messagesReceived: number;
}

/**
 * Pipelining budget: a worker gets more than one task in flight only while the tasks' expected run
 * time adds up to about this much, so pipelining hides the message round trip of tiny tasks and
 * nothing else. Kernels never measured, or slower than this, run one task per worker at a time.
 */
export const PIPELINE_BUDGET_MS = 2;
/** Weight of the newest run time in a kernel's moving average. */
const EWMA_ALPHA = 0.2;
/** Run times below this count as this (a no-op kernel still costs an instantiation). */
const MIN_RUN_MS = 0.005;
const DEFAULT_MAX_PIPELINE_DEPTH = 64;

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

function transfers(input: Uint8Array): boolean {
  const ownsBuffer = input.byteOffset === 0 && input.byteLength === input.buffer.byteLength;
  return input.byteLength >= TRANSFER_THRESHOLD_BYTES && ownsBuffer && input.buffer instanceof ArrayBuffer;
}

const EMPTY = new ArrayBuffer(0);

const shutdown = () => new TaskFailure("SHUTDOWN", "the agent is shutting down");

export class WorkerPool extends EventEmitter {
  private readonly slots: Slot[] = [];
  private readonly queue = new TaskQueue<Pending>();
  private nextId = 1;
  private closed = false;
  private readonly stats = { completed: 0, failed: 0, restarts: 0, pipelined: 0, maxInFlight: 0, requeued: 0, messagesSent: 0, messagesReceived: 0 };
  private readonly entry = workerEntry();
  private readonly maxDepth: number;
  /** Per kernel: moving average of its measured run time in ms, and the pipelining depth that allows. */
  private readonly runMsAverage = new Map<string, number>();
  private readonly depths = new Map<string, number>();

  constructor(private readonly options: WorkerPoolOptions) {
    super();
    if (!Number.isInteger(options.size) || options.size < 1) throw new RangeError(`pool size must be ≥ 1, got ${options.size}`);
    const maxDepth = options.maxPipelineDepth ?? DEFAULT_MAX_PIPELINE_DEPTH;
    if (!Number.isInteger(maxDepth) || maxDepth < 1) throw new RangeError(`maxPipelineDepth must be ≥ 1, got ${maxDepth}`);
    this.maxDepth = maxDepth;
    for (let i = 0; i < options.size; i++) this.slots.push(this.spawn());
  }

  get size(): number {
    return this.slots.length;
  }

  getStats(): PoolStats {
    let running = 0;
    let waiting = 0;
    for (const slot of this.slots) {
      slot.inFlight.forEach((p, i) => {
        if (!p.settled) i === 0 ? running++ : waiting++;
      });
    }
    return { size: this.slots.length, running, queued: this.queue.length + waiting, ...this.stats };
  }

  /**
   * How many tasks of this kernel one worker may have in flight now, the running one included:
   * 1 until a run of it has been measured, then as many as fit PIPELINE_BUDGET_MS by its average run time.
   */
  pipelineDepth(kernelId: string): number {
    return this.depths.get(kernelId) ?? 1;
  }

  run(task: PoolTask): PoolHandle {
    let pending!: Pending;
    const promise = new Promise<PoolResult>((resolve, reject) => {
      pending = { id: this.nextId++, task, enqueuedAt: performance.now(), startedAt: 0, resolve, reject, settled: false };
    });
    if (this.closed) {
      this.settle(pending, shutdown());
    } else {
      this.queue.push(pending);
      this.schedulePump("microtask");
    }
    return { promise, cancel: (reason = "cancelled") => this.cancel(pending, reason) };
  }

  /** Resolves once nothing is running or queued. */
  async idle(): Promise<void> {
    while (this.queue.length > 0 || this.slots.some((s) => s.inFlight.some((p) => !p.settled))) {
      await new Promise((r) => this.once("settled", r));
    }
  }

  /** Stops every worker; anything still queued or running fails with SHUTDOWN. */
  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.drain()) this.settle(p, shutdown());
    await Promise.all(
      this.slots.map(async (slot) => {
        for (const p of this.drain(slot)) this.settle(p, shutdown());
        await slot.worker.terminate();
      }),
    );
  }

  private spawn(): Slot {
    const activity = new WorkerActivity();
    const worker = new Worker(this.entry.source, {
      eval: this.entry.eval,
      resourceLimits: { maxOldGenerationSizeMb: this.options.maxOldGenerationSizeMb ?? 128 },
      workerData: { speedFactor: this.options.speedFactor ?? 1, activity: activity.buffer, replyHoldMs: this.options.replyHoldMs ?? 1 },
      stdout: false,
      stderr: false,
    });
    const slot: Slot = { worker, kernels: new Set(), inFlight: [], kernelsInFlight: new Map(), outbox: { requests: [], transfer: [], small: [] }, activity, received: 0, refill: true, timerDue: Infinity };
    worker.on("message", (replies: FromWorker) => this.onReplies(slot, replies));
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

  /** Empties a slot's in-flight list (and stops its head's timer); returns what was in it, head first. */
  private drain(slot: Slot): Pending[] {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = undefined;
    slot.timerDue = Infinity;
    const list = slot.inFlight;
    slot.inFlight = [];
    slot.kernelsInFlight.clear();
    return list;
  }

  /**
   * Stops a worker whose running task must end now (timeout, cancel, crash): that task (`target`,
   * by default the one the worker is running) fails with `failure`; the tasks sent behind it
   * never started, so they go back to the front of the queue in their order, and so do tasks
   * finished before it whose replies had not arrived (they run again: at least once). A fresh
   * worker takes the slot.
   */
  private restartSlot(slot: Slot, failure: TaskFailure, target = this.runningTask(slot)): void {
    const list = this.drain(slot);
    const back: Pending[] = [];
    for (const p of list) {
      if (p === target) this.settle(p, failure);
      else if (!p.settled) back.push(p);
    }
    for (const p of back) p.slot = undefined;
    this.queue.unshiftAll(back);
    this.stats.requeued += back.length;
    this.replace(slot);
    this.pump();
  }

  /** The in-flight task the worker reports running now, and when it started (epoch ms). */
  private runningNow(slot: Slot): { pending: Pending; startedAtMs: number } | undefined {
    const running = slot.activity.running();
    const pending = running && slot.inFlight.find((p) => p.id === running.id);
    return pending ? { pending, startedAtMs: running.startedAtMs } : undefined;
  }

  /** The in-flight task the worker is running now; else the first not finished (sent, not begun yet). */
  private runningTask(slot: Slot): Pending | undefined {
    return this.runningNow(slot)?.pending ?? slot.inFlight[unheardCount(slot.activity.finished, slot.received)];
  }

  private onWorkerDeath(slot: Slot, reason: string): void {
    this.restartSlot(slot, new TaskFailure("WORKER_CRASHED", reason));
  }

  private noteRunMs(kernelId: string, ms: number, atLeast = false): void {
    const previous = this.runMsAverage.get(kernelId);
    let average = previous === undefined ? ms : previous + EWMA_ALPHA * (ms - previous);
    if (atLeast) average = Math.max(average, ms);
    this.runMsAverage.set(kernelId, average);
    const depth = Math.floor(PIPELINE_BUDGET_MS / Math.max(average, MIN_RUN_MS));
    this.depths.set(kernelId, Math.max(1, Math.min(this.maxDepth, depth)));
  }

  /** How few tasks a worker must have in flight before it is given more: half its pipeline depth. */
  private lowWater(slot: Slot): number {
    let depth = this.maxDepth;
    for (const kernelId of slot.kernelsInFlight.keys()) depth = Math.min(depth, this.pipelineDepth(kernelId));
    return Math.floor(depth / 2);
  }

  /** Whether `pending` may be sent to this worker now. */
  private canTake(slot: Slot, pending: Pending): boolean {
    const n = slot.inFlight.length;
    if (n === 0) return true;
    // Behind another task only: a task whose input would be transferred (a big one) waits for an
    // idle worker, so a task sent back to the queue still has its input.
    if (!slot.refill || n >= this.maxDepth || transfers(pending.task.input)) return false;
    if (n >= this.pipelineDepth(pending.task.kernelId)) return false;
    for (const kernelId of slot.kernelsInFlight.keys()) if (n >= this.pipelineDepth(kernelId)) return false;
    return true;
  }

  private pumpQueued: { microtask: boolean; immediate: boolean } = { microtask: false, immediate: false };

  /**
   * Fills workers a moment later, so that what a burst of run() calls (at the end of the current
   * job: a microtask) or several replies (at the end of this turn of the event loop) made
   * sendable goes to each worker as one message. Per-message costs, not the microseconds of
   * delay, are what bound tiny tasks.
   */
  private schedulePump(when: "microtask" | "immediate"): void {
    if (this.pumpQueued[when]) return;
    this.pumpQueued[when] = true;
    const run = () => {
      this.pumpQueued[when] = false;
      this.pump();
    };
    if (when === "microtask") queueMicrotask(run);
    else setImmediate(run);
  }

  private pump(): void {
    // A busy worker is topped up only once it is down to half its depth: then what it is sent
    // goes by the dozen, not one task per message as each reply comes in.
    for (const slot of this.slots) slot.refill = slot.inFlight.length <= this.lowWater(slot);
    try {
      while (this.queue.length > 0) {
        const next = this.queue.peek()!;
        // The least loaded worker that may take it; the queue stays in order, so when the first
        // task must wait for a worker, everything behind it waits too.
        let best: Slot | undefined;
        for (const slot of this.slots) {
          if ((!best || slot.inFlight.length < best.inFlight.length) && this.canTake(slot, next)) best = slot;
        }
        if (!best) return;
        this.queue.shift();
        this.post(best, next);
      }
    } finally {
      this.flushOutboxes();
    }
  }

  /** What one pump gave each worker goes as one message: per-message costs dominate tiny tasks. */
  private flushOutboxes(): void {
    for (const slot of this.slots) {
      const { requests, transfer, small } = slot.outbox;
      if (requests.length === 0) continue;
      slot.outbox = { requests: [], transfer: [], small: [] };
      // Small inputs travel packed in one buffer (one allocation and one clone per message, not per task).
      let total = 0;
      for (const { input } of small) total += input.byteLength;
      const packed = new Uint8Array(total);
      let at = 0;
      for (const { req, input } of small) {
        packed.set(input, at);
        req.input = packed.buffer;
        req.inputOffset = at;
        at += input.byteLength;
      }
      const msg: ToWorker = requests.length === 1 ? requests[0]! : { type: "batch", requests };
      slot.worker.postMessage(msg, transfer);
      this.stats.messagesSent++;
    }
  }

  private post(slot: Slot, pending: Pending): void {
    const { task } = pending;
    const idle = slot.inFlight.length === 0;
    pending.slot = slot;
    slot.inFlight.push(pending);
    slot.kernelsInFlight.set(task.kernelId, (slot.kernelsInFlight.get(task.kernelId) ?? 0) + 1);
    if (!idle) this.stats.pipelined++;
    if (slot.inFlight.length > this.stats.maxInFlight) this.stats.maxInFlight = slot.inFlight.length;
    const input = task.input;
    const large = input.byteLength >= TRANSFER_THRESHOLD_BYTES;
    // A large input moves by transfer (its own buffer when it owns one, else a copy: new
    // Uint8Array(view) copies, Buffer#slice would not); small ones are packed at flush.
    const buffer = large ? (idle && transfers(input) ? (input.buffer as ArrayBuffer) : new Uint8Array(input).buffer) : EMPTY;
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
    // The worker keeps modules by kernel id and reads its messages in order: the first message
    // of a kernel to this worker carries the module, whether or not tasks are ahead of it.
    if (!slot.kernels.has(task.kernelId)) {
      req.module = task.module;
      slot.kernels.add(task.kernelId);
    }
    slot.outbox.requests.push(req);
    if (large) slot.outbox.transfer.push(buffer);
    else slot.outbox.small.push({ req, input });
    if (idle) this.startHead(slot);
    // It may begin as soon as the tasks ahead of it finish: look no later than its timeout from now.
    else if (epochMs() + task.timeoutMs < slot.timerDue) this.armTimeout(slot);
  }

  /**
   * The slot's first in-flight task is running now, as far as the pool knows: tell its owner, and
   * arm the timeout of the task the worker is really running (this one, or one behind it whose
   * predecessors' replies are still on their way).
   */
  private startHead(slot: Slot): void {
    const head = slot.inFlight[0];
    if (!head) return;
    this.markStarted(head);
    this.armTimeout(slot);
  }

  private markStarted(p: Pending): void {
    if (p.startedAt) return;
    p.startedAt = performance.now();
    if (!p.settled) p.task.onStart?.(p.startedAt - p.enqueuedAt);
  }

  /**
   * Looks again at the earliest moment an in-flight task could be past its timeout: the running
   * one's own deadline, or (for a task not begun yet, or begun since) its timeout from now. A
   * cancelled task still running on the worker keeps its timeout: a runaway one is stopped too.
   */
  private armTimeout(slot: Slot): void {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = undefined;
    slot.timerDue = Infinity;
    if (slot.inFlight.length === 0) return;
    const running = this.runningNow(slot);
    const now = epochMs();
    let wait = Infinity;
    for (const p of slot.inFlight) {
      const { timeoutMs } = p.task;
      wait = Math.min(wait, running?.pending === p ? running.startedAtMs + timeoutMs - now : timeoutMs);
    }
    slot.timerDue = now + wait;
    slot.timer = setTimeout(() => this.checkTimeout(slot), Math.max(0, wait));
  }

  /** The timer fired: stop the running task if it is past its timeout, else look again later. */
  private checkTimeout(slot: Slot): void {
    slot.timer = undefined;
    if (!this.slots.includes(slot)) return;
    const running = this.runningNow(slot);
    if (running) {
      const { kernelId, timeoutMs } = running.pending.task;
      if (epochMs() - running.startedAtMs >= timeoutMs) {
        this.noteRunMs(kernelId, timeoutMs, true);
        this.restartSlot(slot, new TaskFailure("TIMEOUT", `task exceeded its timeout of ${timeoutMs} ms; its worker was stopped`), running.pending);
        return;
      }
    }
    this.armTimeout(slot);
  }

  private onReplies(slot: Slot, replies: FromWorker): void {
    this.stats.messagesReceived++;
    const head = slot.inFlight[0];
    for (const reply of replies) this.onReply(slot, reply);
    // A new head: it has started (as far as the pool can tell), and the timeout follows the running task.
    if (slot.inFlight[0] !== head) {
      if (slot.inFlight[0]) this.startHead(slot);
      else this.armTimeout(slot);
    }
    this.schedulePump("immediate");
  }

  private onReply(slot: Slot, msg: RunResponse): void {
    slot.received = (slot.received + 1) | 0;
    const list = slot.inFlight;
    const index = list[0]?.id === msg.id ? 0 : list.findIndex((p) => p.id === msg.id);
    if (index < 0) return; // a late reply for a task whose worker was already given up on
    const pending = list[index]!;
    if (index === 0) list.shift();
    else list.splice(index, 1); // not expected: the worker answers in order
    // A task that ran behind the head, answered in the same message: it started after its predecessor.
    this.markStarted(pending);
    const kernelId = pending.task.kernelId;
    const count = (slot.kernelsInFlight.get(kernelId) ?? 1) - 1;
    if (count > 0) slot.kernelsInFlight.set(kernelId, count);
    else slot.kernelsInFlight.delete(kernelId);
    this.noteRunMs(kernelId, msg.runMs);
    // A task cancelled while it waited behind the head is settled already: its reply is dropped.
    if (msg.type === "done") {
      this.settle(pending, undefined, {
        output: Buffer.from(msg.output),
        runMs: msg.runMs,
        waitMs: pending.startedAt - pending.enqueuedAt,
      });
    } else {
      this.settle(pending, new TaskFailure(msg.code, msg.message));
    }
  }

  private cancel(pending: Pending, reason: string): void {
    if (pending.settled) return;
    const slot = pending.slot;
    if (!slot) {
      if (this.queue.remove(pending)) this.settle(pending, new TaskFailure("CANCELLED", reason));
      return;
    }
    if (this.runningTask(slot) === pending) {
      // A running kernel cannot be interrupted: stop its worker and start a fresh one.
      this.restartSlot(slot, new TaskFailure("CANCELLED", reason), pending);
    } else {
      // Finished (its reply on the way), or sent behind the running task and not started: it is
      // tiny (or it would not have been pipelined), so it may run; it is settled now and its
      // reply will be dropped.
      this.settle(pending, new TaskFailure("CANCELLED", reason));
    }
  }

  private settle(pending: Pending, error?: TaskFailure, result?: PoolResult): void {
    if (pending.settled) return;
    pending.settled = true;
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
