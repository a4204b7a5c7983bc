// One kernel worker thread and what the pool knows of it: the tasks sent to it in the order it
// runs them, which task it is running now (memory it shares with the pool: WorkerActivity), the
// timer of the running task's timeout, and the requests of the current pump, packed into one
// message when the pump ends. The pool decides what to send and what a failure means; the slot
// keeps its own books.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { epochMs, unheardCount, WorkerActivity, type FromWorker, type RunRequest, type RunResponse, type ToWorker } from "./messages.js";
import type { WorkerPipeline } from "./pipelining.js";
import type { PoolResult, PoolTask, TaskFailure } from "./types.js";
import { LogMirror } from "./log-mirror.js";
import { InputRing, type RingRegion } from "./input-ring.js";
import type { MemoryPoolOptions } from "../wasm/memory-pool.js";

/** A task accepted by the pool, from run() until it is settled. */
export interface Pending {
  id: number;
  task: PoolTask;
  /** The input's length when the task came (a transferred input reads 0 bytes afterwards). */
  inputBytes: number;
  enqueuedAt: number;
  startedAt: number;
  resolve(result: PoolResult): void;
  reject(err: TaskFailure): void;
  /** The worker it was sent to; unset while it waits in the pool's queue. */
  slot?: WorkerSlot;
  settled: boolean;
  /** Where its input waits in its worker's input ring, until the reply (input-ring.ts). */
  inputRegion?: RingRegion;
}

/** Large inputs move to the worker by transfer instead of a copy when they own their buffer. */
const TRANSFER_THRESHOLD_BYTES = 64 * 1024;
const EMPTY = new ArrayBuffer(0);

/** Whether this input would move to the worker by transfer (large, and owning its whole buffer). */
export function transfers(input: Uint8Array): boolean {
  const ownsBuffer = input.byteOffset === 0 && input.byteLength === input.buffer.byteLength;
  return input.byteLength >= TRANSFER_THRESHOLD_BYTES && ownsBuffer && input.buffer instanceof ArrayBuffer;
}

/** The task has started, as far as the pool can tell: tell its owner, once. */
export function markStarted(p: Pending): void {
  if (p.startedAt) return;
  p.startedAt = performance.now();
  if (!p.settled) p.task.onStart?.(p.startedAt - p.enqueuedAt);
}

export interface WorkerEntry {
  source: URL | string;
  eval: boolean;
}

/** The compiled worker next to this file, or (running from TypeScript sources) the .ts one through tsx. */
export function workerEntry(): WorkerEntry {
  const js = new URL("./kernel-worker.js", import.meta.url);
  if (existsSync(fileURLToPath(js))) return { source: js, eval: false };
  // Running from TypeScript sources (vitest, tsx): register tsx in the worker, then load the .ts worker.
  const ts = new URL("./kernel-worker.ts", import.meta.url).href;
  return {
    source: `import("tsx/esm/api").then((m) => { m.register(); return import(${JSON.stringify(ts)}); })`,
    eval: true,
  };
}

/** What a slot reports to its pool. */
export interface SlotEvents {
  replies(slot: WorkerSlot, replies: FromWorker): void;
  error(slot: WorkerSlot, err: Error): void;
  exit(slot: WorkerSlot, code: number): void;
  /** The earliest moment an in-flight task could be past its timeout has come. */
  timeoutDue(slot: WorkerSlot): void;
}

export interface SlotOptions {
  maxOldGenerationSizeMb: number;
  speedFactor: number;
  replyHoldMs: number;
  memoryPool: MemoryPoolOptions;
}

export class WorkerSlot implements WorkerPipeline {
  readonly worker: Worker;
  /** Kernels whose module this worker holds. */
  private readonly kernels = new Set<string>();
  /**
   * Tasks sent to this worker and not answered yet, in the order the worker runs them. The
   * first is the running one (the head). An entry may be settled already: a task cancelled
   * while it waited behind the head still runs on the worker, and its reply is ignored.
   */
  inFlight: Pending[] = [];
  /** How many entries of inFlight belong to each kernel (for the pipelining depth). */
  private readonly kernelsInFlight = new Map<string, number>();
  /** When to look whether the running task is past its timeout, and that moment (epoch ms). */
  private timer?: NodeJS.Timeout;
  private timerDue = Infinity;
  /** Which task the worker is running now, and how many it has finished (shared with it). */
  private readonly activity = new WorkerActivity();
  /** The running task's log lines so far (shared with it): what a timed-out task had logged. */
  private readonly logMirror = new LogMirror();
  /** Small inputs on their way to this worker (input-ring.ts). */
  private readonly ring = new InputRing();
  /**
   * Replies handled from this worker, as a wrapping 32-bit count like activity.finished: the
   * difference (see unheardCount) is how many finished tasks have not been heard of yet.
   */
  private received = 0;
  /** Whether this pump may add tasks behind the ones in flight (set when a pump starts). */
  refill = true;
  /** Requests posted during the current pump, sent together when it ends. */
  private outbox: { requests: RunRequest[]; transfer: ArrayBuffer[]; small: { req: RunRequest; input: Uint8Array }[] } = { requests: [], transfer: [], small: [] };

  constructor(entry: WorkerEntry, options: SlotOptions, events: SlotEvents) {
    this.worker = new Worker(entry.source, {
      eval: entry.eval,
      resourceLimits: { maxOldGenerationSizeMb: options.maxOldGenerationSizeMb },
      workerData: { speedFactor: options.speedFactor, activity: this.activity.buffer, replyHoldMs: options.replyHoldMs, logMirror: this.logMirror.buffer, memoryPool: options.memoryPool },
      stdout: false,
      stderr: false,
    });
    this.worker.on("message", (replies: FromWorker) => events.replies(this, replies));
    this.worker.on("error", (err) => events.error(this, err));
    this.worker.on("exit", (code) => events.exit(this, code));
    this.timeoutDue = () => events.timeoutDue(this);
    this.worker.unref();
  }

  private readonly timeoutDue: () => void;

  get held(): number {
    return this.inFlight.length;
  }

  /** What `pending` logged so far, if it is the task this worker runs (or ran last) and it logs at all. */
  logsOf(pending: Pending | undefined): string[] | undefined {
    const cap = pending?.task.log;
    const lines = pending && cap ? this.logMirror.read(pending.id, cap) : undefined;
    return lines && lines.length > 0 ? lines : undefined;
  }

  get kernelsHeld(): Iterable<string> {
    return this.kernelsInFlight.keys();
  }

  /**
   * Sends the task behind those in flight (in this pump's message), with `spare`, a recycled
   * buffer for its output, if given (transferred: the worker owns it from here); returns whether
   * the worker was idle.
   */
  post(pending: Pending, spare?: ArrayBuffer): boolean {
    const { task } = pending;
    const idle = this.inFlight.length === 0;
    pending.slot = this;
    this.inFlight.push(pending);
    this.kernelsInFlight.set(task.kernelId, (this.kernelsInFlight.get(task.kernelId) ?? 0) + 1);
    const input = task.input;
    // A blob fetched by reference is in shared memory: the worker reads it where it is.
    const inShared = input.buffer instanceof SharedArrayBuffer;
    const large = !inShared && input.byteLength >= TRANSFER_THRESHOLD_BYTES;
    // A large input moves by transfer (its own buffer when it owns one, else a copy: new
    // Uint8Array(view) copies, Buffer#slice would not); small ones are packed at flush.
    // A small one is copied into this worker's input ring when it fits; else packed at flush.
    const region = inShared || large ? undefined : this.ring.put(input);
    if (region) pending.inputRegion = region;
    const buffer = inShared ? (input.buffer as SharedArrayBuffer) : large ? (idle && transfers(input) ? (input.buffer as ArrayBuffer) : new Uint8Array(input).buffer) : region ? this.ring.buffer! : EMPTY;
    const req: RunRequest = {
      type: "run",
      id: pending.id,
      kernelId: task.kernelId,
      input: buffer,
      inputOffset: inShared ? input.byteOffset : region ? region.start : 0,
      inputLength: input.byteLength,
      memoryLimitBytes: task.memoryLimitBytes,
      seed: task.seed ?? pending.id,
      ...(task.log ? { log: task.log } : {}),
      ...(task.shared && task.shared.length > 0 ? { shared: task.shared.map((v) => ({ buffer: v.buffer as SharedArrayBuffer, offset: v.byteOffset, length: v.byteLength })) } : {}),
    };
    // The worker keeps modules by kernel id and reads its messages in order: the first message
    // of a kernel to this worker carries the module, whether or not tasks are ahead of it.
    if (!this.kernels.has(task.kernelId)) {
      req.module = task.module;
      this.kernels.add(task.kernelId);
    }
    if (spare) {
      req.spare = spare;
      this.outbox.transfer.push(spare);
    }
    this.outbox.requests.push(req);
    if (large) this.outbox.transfer.push(buffer as ArrayBuffer);
    else if (!inShared && !region) this.outbox.small.push({ req, input });
    if (idle) this.startHead();
    // It may begin as soon as the tasks ahead of it finish: look no later than its timeout from now.
    else if (epochMs() + task.timeoutMs < this.timerDue) this.armTimeout();
    return idle;
  }

  /** What this pump gave the worker goes as one message: per-message costs dominate tiny tasks. Returns whether one went. */
  flush(): boolean {
    const { requests, transfer, small } = this.outbox;
    if (requests.length === 0) return false;
    this.outbox = { requests: [], transfer: [], small: [] };
    // Small inputs travel packed in one buffer (one allocation and one clone per message, not per task).
    let total = 0;
    for (const { input } of small) total += input.byteLength;
    // Not zero-filled: every byte of it is written just below.
    const packed = total > 0 ? new Uint8Array(Buffer.allocUnsafeSlow(total).buffer, 0, total) : new Uint8Array(0);
    let at = 0;
    for (const { req, input } of small) {
      packed.set(input, at);
      req.input = packed.buffer;
      req.inputOffset = at;
      at += input.byteLength;
    }
    // The packed buffer is this message's own copy: it moves by transfer rather than being cloned again.
    if (total > 0) transfer.push(packed.buffer);
    const msg: ToWorker = requests.length === 1 ? requests[0]! : { type: "batch", requests };
    this.worker.postMessage(msg, transfer);
    return true;
  }

  /**
   * Books one reply: the task it answers leaves the in-flight list (and is marked started: a
   * task that ran behind the head, answered in the same message, started after its
   * predecessor). Undefined for a late reply of a task this slot no longer holds.
   */
  takeReply(msg: RunResponse): Pending | undefined {
    this.received = (this.received + 1) | 0;
    const list = this.inFlight;
    const index = list[0]?.id === msg.id ? 0 : list.findIndex((p) => p.id === msg.id);
    if (index < 0) return undefined; // a late reply for a task whose worker was already given up on
    const pending = list[index]!;
    // The worker has read the input: its region may be written again.
    if (pending.inputRegion) this.ring.release(pending.inputRegion);
    pending.inputRegion = undefined;
    if (index === 0) list.shift();
    else list.splice(index, 1); // not expected: the worker answers in order
    markStarted(pending);
    const kernelId = pending.task.kernelId;
    const count = (this.kernelsInFlight.get(kernelId) ?? 1) - 1;
    if (count > 0) this.kernelsInFlight.set(kernelId, count);
    else this.kernelsInFlight.delete(kernelId);
    return pending;
  }

  /** Empties the in-flight list (and stops the timeout timer); returns what was in it, head first. */
  drain(): Pending[] {
    this.stopTimer();
    const list = this.inFlight;
    this.inFlight = [];
    this.kernelsInFlight.clear();
    // The worker is being stopped, and its ring with it: a task sent again gets a region elsewhere.
    for (const p of list) p.inputRegion = undefined;
    return list;
  }

  /** The in-flight task the worker reports running now, and when it started (epoch ms). */
  runningNow(): { pending: Pending; startedAtMs: number } | undefined {
    const running = this.activity.running();
    const pending = running && this.inFlight.find((p) => p.id === running.id);
    return pending ? { pending, startedAtMs: running.startedAtMs } : undefined;
  }

  /** The in-flight task the worker is running now; else the first not finished (sent, not begun yet). */
  runningTask(): Pending | undefined {
    return this.runningNow()?.pending ?? this.inFlight[unheardCount(this.activity.finished, this.received)];
  }

  /**
   * The first in-flight task is running now, as far as the pool knows: tell its owner, and arm
   * the timeout of the task the worker is really running (this one, or one behind it whose
   * predecessors' replies are still on their way).
   */
  startHead(): void {
    const head = this.inFlight[0];
    if (!head) return;
    markStarted(head);
    this.armTimeout();
  }

  /**
   * Looks again at the earliest moment an in-flight task could be past its timeout: the running
   * one's own deadline, or (for a task not begun yet, or begun since) its timeout from now. A
   * cancelled task still running on the worker keeps its timeout: a runaway one is stopped too.
   */
  armTimeout(): void {
    this.stopTimer();
    if (this.inFlight.length === 0) return;
    const running = this.runningNow();
    const now = epochMs();
    let wait = Infinity;
    for (const p of this.inFlight) {
      const { timeoutMs } = p.task;
      wait = Math.min(wait, running?.pending === p ? running.startedAtMs + timeoutMs - now : timeoutMs);
    }
    this.timerDue = now + wait;
    this.timer = setTimeout(this.timeoutDue, Math.max(0, wait));
  }

  /** The timer fired: it is no longer pending. */
  timerFired(): void {
    this.timer = undefined;
  }

  private stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = Infinity;
  }

  /** Stops the thread, its events unheard from now on. */
  terminate(): Promise<number> {
    this.worker.removeAllListeners();
    return this.worker.terminate();
  }
}
