// A kernel worker thread: keeps compiled modules by kernel id and runs one task at a time, in
// the order the pool sent them (the pool may have several in flight: it pipelines tiny tasks),
// each in a fresh instance with a capped memory (a zeroed one of its size class reused from the
// last tasks, grown ones included: memory-pool.ts). Replies go back several at a time (per-message
// costs dominate tiny tasks): at the end of each message's tasks, or sooner once the oldest unsent
// one has waited replyHoldMs.
// Which task is running now is in memory shared with the pool (WorkerActivity), so a timeout or a
// cancel still stops exactly the right one. Large outputs are transferred, not copied; a task
// may come with a recycled buffer for its output (a `spare`: worker-pool.ts), which goes back,
// transferred, as the output or unused.
import { parentPort, workerData } from "node:worker_threads";
import { MemoryPool, type MemoryPoolOptions } from "../wasm/memory-pool.js";
import { KernelRunError, runWasmKernel } from "../wasm/run-kernel.js";
import { KernelLog } from "../../common/kernel-log.js";
import { LogMirror } from "./log-mirror.js";
import { useOptimizingWasmTier } from "../wasm/tier.js";
import { epochMs, WorkerActivity, type RunRequest, type RunResponse, type ToWorker } from "./messages.js";

useOptimizingWasmTier();

const data = workerData as { speedFactor?: number; activity: SharedArrayBuffer; replyHoldMs: number; logMirror?: SharedArrayBuffer; memoryPool?: MemoryPoolOptions };
const activity = new WorkerActivity(data.activity);
/** The running task's log, readable by the pool if this worker is stopped mid-task (a timeout). */
const logMirror = data.logMirror ? new LogMirror(data.logMirror) : undefined;
/** Longest a finished task's reply waits for others to go with it. */
const replyHoldMs = data.replyHoldMs;

// Testing aid (agent --speed-factor): hold the worker for runMs × (1/f − 1) more, so the node is
// really slower — its throughput drops, calibration included — not just reported as slower.
const speedFactor = Number(data.speedFactor ?? 1);
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const stretch = (started: number) => {
  if (!(speedFactor > 0 && speedFactor < 1)) return;
  const extra = (performance.now() - started) * (1 / speedFactor - 1);
  if (extra >= 1) Atomics.wait(sleeper, 0, 0, extra);
  else for (const end = performance.now() + extra; performance.now() < end; );
};

const modules = new Map<string, WebAssembly.Module>();
/**
 * Notes the memory each task needed as run-kernel gives it back: its size if the task grew it
 * (linear memory only grows: the peak), else what the task asked for (a reused memory may be bigger).
 */
class MeasuringMemoryPool extends MemoryPool {
  lastBytes = 0;
  private asked = 0;
  private handed = 0;
  override acquire(initialPages: number, maximumPages: number): WebAssembly.Memory {
    const memory = super.acquire(initialPages, maximumPages);
    this.asked = initialPages * 65536;
    this.handed = memory.buffer.byteLength;
    return memory;
  }
  override release(memory: WebAssembly.Memory, maximumPages: number): void {
    const bytes = memory.buffer.byteLength;
    this.lastBytes = bytes > this.handed ? bytes : this.asked;
    super.release(memory, maximumPages);
  }
}
// Zeroing a kept memory waits until the replies are posted: a large task's next one comes a
// message round trip later, time the worker would spend idle (acquire() zeroes it if not yet).
const memoryPool = new MeasuringMemoryPool({ ...data.memoryPool, deferZeroing: true });
let scrubbing = false;
const scrub = () => {
  scrubbing = false;
  memoryPool.scrub();
};
if (!parentPort) throw new Error("kernel-worker must run in a worker thread");
const port = parentPort;

/** The running task's recycled buffer: its output's if the length matches, else it goes back with the reply. */
let spare: ArrayBuffer | undefined;
const outputBuffers = {
  take(length: number): ArrayBuffer {
    const buffer = spare;
    if (buffer && buffer.byteLength === length) {
      spare = undefined;
      return buffer;
    }
    return new ArrayBuffer(length);
  },
};

let unsent: RunResponse[] = [];
let transfer: ArrayBuffer[] = [];
let oldestUnsentAt = 0;

function send(): void {
  if (unsent.length === 0) return;
  port.postMessage(unsent, transfer);
  unsent = [];
  transfer = [];
}

port.on("message", (msg: ToWorker) => {
  if (msg.type === "batch") {
    for (const req of msg.requests) {
      run(req);
      if (performance.now() - oldestUnsentAt >= replyHoldMs) send();
    }
  } else run(msg);
  send();
  if (memoryPool.dirty > 0 && !scrubbing) {
    scrubbing = true;
    setImmediate(scrub);
  }
});

function run(req: RunRequest): void {
  if (req.module) modules.set(req.kernelId, req.module);
  const module = modules.get(req.kernelId);
  const started = performance.now();
  logMirror?.begin(req.id);
  activity.begin(req.id, epochMs());
  let reply: RunResponse;
  spare = req.spare;
  if (!module) {
    reply = { type: "failed", id: req.id, code: "INVALID_KERNEL", message: `worker has no module for ${req.kernelId}`, runMs: 0 };
  } else {
    const log = req.log ? new KernelLog(req.log.maxBytes, req.log.maxLines, logMirror) : undefined;
    // Sent only when the kernel logged: most tasks carry nothing extra.
    const logs = () => {
      const lines = log?.lines();
      return lines && lines.length > 0 ? { logs: lines } : {};
    };
    try {
      const input = new Uint8Array(req.input, req.inputOffset, req.inputLength);
      const shared = req.shared?.map((s) => new Uint8Array(s.buffer, s.offset, s.length));
      const output = runWasmKernel(module, input, { memoryLimitBytes: req.memoryLimitBytes, seed: req.seed, memoryPool, ...(spare ? { outputPool: outputBuffers } : {}), ...(shared ? { sharedInputs: shared } : {}), ...(log ? { log } : {}) });
      stretch(started);
      reply = { type: "done", id: req.id, output, runMs: performance.now() - started, memoryBytes: memoryPool.lastBytes, ...logs() };
      // Large outputs move by transfer; a small one is cheaper to copy with the message.
      if (output.byteLength >= 64 * 1024) transfer.push(output);
    } catch (err) {
      const code = err instanceof KernelRunError ? err.code : "TRAP";
      reply = { type: "failed", id: req.id, code, message: (err as Error).message, runMs: performance.now() - started, ...logs() };
    }
  }
  activity.end();
  if (spare) {
    reply.spare = spare;
    transfer.push(spare);
    spare = undefined;
  }
  if (unsent.length === 0) oldestUnsentAt = performance.now();
  unsent.push(reply);
}
