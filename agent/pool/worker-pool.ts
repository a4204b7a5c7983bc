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
// each kernel's measured run time (pipelining.ts), so a kernel that is not tiny, or not
// measured yet, runs one task per worker exactly as without pipelining.
//
// Here: the queue, the pump (which worker gets which task), replies, timeouts, cancels and
// restarts, and recycled output buffers (an output given back with PoolResult.release goes to
// a worker with a later task of its kernel, transferred, to hold that task's output: one
// owner at a time, and transfer detaches whatever views the last one kept). One worker's books: worker-slot.ts; the depth policy: pipelining.ts; the public
// shapes and TaskFailure: types.ts.
import { EventEmitter } from "node:events";
import type { FromWorker, RunResponse } from "./messages.js";
import { epochMs } from "./messages.js";
import { DEFAULT_MAX_PIPELINE_DEPTH, KernelDepths, lowWater, mayTake } from "./pipelining.js";
import { FifoQueue } from "./fifo-queue.js";
import { OutputPool, poisonFromEnv } from "../wasm/output-pool.js";
import { markRewritten } from "../../common/hash.js";
import { shutdownFailure, TaskFailure, type PoolHandle, type PoolResult, type PoolStats, type PoolTask, type WorkerPoolOptions } from "./types.js";
import { transfers, workerEntry, WorkerSlot, type Pending, type SlotEvents, type SlotOptions } from "./worker-slot.js";

export { PIPELINE_BUDGET_MS } from "./pipelining.js";
export { TaskFailure, type PoolHandle, type PoolResult, type PoolStats, type PoolTask, type TaskFailureCode, type WorkerPoolOptions } from "./types.js";

/** Output lengths the pool remembers (for the spare it sends); forgotten all at once past this. */
const MAX_LENGTHS_REMEMBERED = 4096;
/** Tasks of one kernel with inputs of one length mostly have outputs of one length (saxpy, gemm blocks, tiles). */
const shapeOf = (kernelId: string, inputBytes: number): string => `${kernelId}/${inputBytes}`;

export class WorkerPool extends EventEmitter {
  private readonly slots: WorkerSlot[] = [];
  private readonly queue = new FifoQueue<Pending>();
  private nextId = 1;
  private closed = false;
  private readonly stats = { completed: 0, failed: 0, restarts: 0, pipelined: 0, maxInFlight: 0, requeued: 0, messagesSent: 0, messagesReceived: 0 };
  private readonly entry = workerEntry();
  private readonly slotOptions: SlotOptions;
  private readonly depths: KernelDepths;
  /** Recycled output buffers, on this thread; undefined when recycling is off. */
  readonly outputs?: OutputPool;
  /** The last recyclable output length by kernel and input length: a task of that shape is sent with a kept buffer of it. */
  private readonly outputLengths = new Map<string, number>();
  private readonly slotEvents: SlotEvents = {
    replies: (slot, replies) => this.onReplies(slot, replies),
    error: (slot, err) => this.onWorkerDeath(slot, `worker crashed: ${err.message}`),
    exit: (slot, code) => {
      if (!this.closed && this.slots.includes(slot)) this.onWorkerDeath(slot, `worker exited with code ${code}`);
    },
    timeoutDue: (slot) => this.checkTimeout(slot),
  };

  constructor(options: WorkerPoolOptions) {
    super();
    if (!Number.isInteger(options.size) || options.size < 1) throw new RangeError(`pool size must be ≥ 1, got ${options.size}`);
    const maxDepth = options.maxPipelineDepth ?? DEFAULT_MAX_PIPELINE_DEPTH;
    if (!Number.isInteger(maxDepth) || maxDepth < 1) throw new RangeError(`maxPipelineDepth must be ≥ 1, got ${maxDepth}`);
    this.depths = new KernelDepths(maxDepth);
    this.slotOptions = { maxOldGenerationSizeMb: options.maxOldGenerationSizeMb ?? 128, speedFactor: options.speedFactor ?? 1, replyHoldMs: options.replyHoldMs ?? 1, memoryPool: options.memoryPool ?? {} };
    const out = options.outputPool;
    if (out && out.maxTotalBytes !== 0 && out.maxCount !== 0) this.outputs = new OutputPool({ poison: poisonFromEnv(), ...out });
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
    const outputs = { outputBuffersReused: this.outputs?.reused ?? 0, outputPoolBytes: this.outputs?.bytes ?? 0 };
    return { size: this.slots.length, running, queued: this.queue.length + waiting, ...this.stats, ...outputs };
  }

  /**
   * How many tasks of this kernel one worker may have in flight now, the running one included:
   * 1 until a run of it has been measured, then as many as fit PIPELINE_BUDGET_MS by its average run time.
   */
  pipelineDepth(kernelId: string): number {
    return this.depths.depthOf(kernelId);
  }

  run(task: PoolTask): PoolHandle {
    let pending!: Pending;
    const promise = new Promise<PoolResult>((resolve, reject) => {
      pending = { id: this.nextId++, task, inputBytes: task.input.byteLength, enqueuedAt: performance.now(), startedAt: 0, resolve, reject, settled: false };
    });
    if (this.closed) {
      this.settle(pending, shutdownFailure());
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
    for (const p of this.queue.drain()) this.settle(p, shutdownFailure());
    await Promise.all(
      this.slots.map(async (slot) => {
        for (const p of slot.drain()) this.settle(p, shutdownFailure());
        await slot.worker.terminate();
      }),
    );
  }

  private spawn(): WorkerSlot {
    return new WorkerSlot(this.entry, this.slotOptions, this.slotEvents);
  }

  private replace(slot: WorkerSlot): void {
    const index = this.slots.indexOf(slot);
    if (index < 0) return;
    this.stats.restarts++;
    void slot.terminate();
    if (this.closed) {
      this.slots.splice(index, 1);
      return;
    }
    this.slots[index] = this.spawn();
    this.emit("restart");
  }

  /**
   * Stops a worker whose running task must end now (timeout, cancel, crash): that task (`target`,
   * by default the one the worker is running) fails with `failure`; the tasks sent behind it
   * never started, so they go back to the front of the queue in their order, and so do tasks
   * finished before it whose replies had not arrived (they run again: at least once). A fresh
   * worker takes the slot.
   */
  private restartSlot(slot: WorkerSlot, failure: TaskFailure, target = slot.runningTask()): void {
    const list = slot.drain();
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

  private onWorkerDeath(slot: WorkerSlot, reason: string): void {
    const target = slot.runningTask();
    this.restartSlot(slot, new TaskFailure("WORKER_CRASHED", reason, slot.logsOf(target)), target);
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
    const { depthOf, maxDepth } = this.depths;
    for (const slot of this.slots) slot.refill = slot.inFlight.length <= lowWater(slot.kernelsHeld, depthOf, maxDepth);
    try {
      while (this.queue.length > 0) {
        const next = this.queue.peek()!;
        // The least loaded worker that may take it; the queue stays in order, so when the first
        // task must wait for a worker, everything behind it waits too.
        const { kernelId, input } = next.task;
        let best: WorkerSlot | undefined;
        for (const slot of this.slots) {
          if ((!best || slot.inFlight.length < best.inFlight.length) && mayTake(slot, kernelId, transfers(input), depthOf, maxDepth)) best = slot;
        }
        if (!best) return;
        this.queue.shift();
        const length = this.outputs && this.outputLengths.get(shapeOf(kernelId, input.byteLength));
        if (!best.post(next, length ? this.outputs!.takeKept(length) : undefined)) this.stats.pipelined++;
        if (best.inFlight.length > this.stats.maxInFlight) this.stats.maxInFlight = best.inFlight.length;
      }
    } finally {
      for (const slot of this.slots) if (slot.flush()) this.stats.messagesSent++;
    }
  }

  /** The timer fired: stop the running task if it is past its timeout, else look again later. */
  private checkTimeout(slot: WorkerSlot): void {
    slot.timerFired();
    if (!this.slots.includes(slot)) return;
    const running = slot.runningNow();
    if (running) {
      const { kernelId, timeoutMs } = running.pending.task;
      if (epochMs() - running.startedAtMs >= timeoutMs) {
        this.depths.noteRun(kernelId, timeoutMs, true);
        // What it logged before it hung is in the log mirror (its worker, and its replies, are stopped).
        this.restartSlot(slot, new TaskFailure("TIMEOUT", `task exceeded its timeout of ${timeoutMs} ms; its worker was stopped`, slot.logsOf(running.pending)), running.pending);
        return;
      }
    }
    slot.armTimeout();
  }

  private onReplies(slot: WorkerSlot, replies: FromWorker): void {
    this.stats.messagesReceived++;
    const head = slot.inFlight[0];
    for (const reply of replies) this.onReply(slot, reply);
    // A new head: it has started (as far as the pool can tell), and the timeout follows the running task.
    if (slot.inFlight[0] !== head) {
      if (slot.inFlight[0]) slot.startHead();
      else slot.armTimeout();
    }
    this.schedulePump("immediate");
  }

  private onReply(slot: WorkerSlot, msg: RunResponse): void {
    const pending = slot.takeReply(msg);
    if (msg.spare) this.outputs?.give(msg.spare);
    // A late reply, or one of a task cancelled while it waited behind the head (settled already):
    // dropped, and its output, which no one else holds, recycled.
    if (!pending || pending.settled) {
      if (msg.type === "done") this.outputs?.give(msg.output);
      if (pending) this.depths.noteRun(pending.task.kernelId, msg.runMs);
      return;
    }
    this.depths.noteRun(pending.task.kernelId, msg.runMs);
    if (msg.type === "done") {
      const release = this.recycling(shapeOf(pending.task.kernelId, pending.inputBytes), msg.output);
      this.settle(pending, undefined, { output: Buffer.from(msg.output), runMs: msg.runMs, waitMs: pending.startedAt - pending.enqueuedAt, memoryBytes: msg.memoryBytes, ...(msg.logs ? { logs: msg.logs } : {}), ...(release ? { release } : {}) });
    } else {
      this.settle(pending, new TaskFailure(msg.code, msg.message, msg.logs));
    }
  }

  /** How the owner of a new output gives its buffer back, when it is one to recycle. */
  private recycling(shape: string, output: ArrayBuffer): (() => void) | undefined {
    const outputs = this.outputs;
    if (!outputs || output.byteLength < outputs.minBytes || output.byteLength > outputs.maxTotalBytes) return undefined;
    // Before anyone has a view of it: sha256Once caches no digest of this buffer's bytes (common/hash.ts).
    markRewritten(output);
    if (this.outputLengths.size >= MAX_LENGTHS_REMEMBERED && !this.outputLengths.has(shape)) this.outputLengths.clear();
    this.outputLengths.set(shape, output.byteLength);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      outputs.give(output);
    };
  }

  private cancel(pending: Pending, reason: string): void {
    if (pending.settled) return;
    const slot = pending.slot;
    if (!slot) {
      if (this.queue.remove(pending)) this.settle(pending, new TaskFailure("CANCELLED", reason));
      return;
    }
    if (slot.runningTask() === pending) {
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
