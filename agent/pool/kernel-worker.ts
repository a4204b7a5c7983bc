// A kernel worker thread: keeps compiled modules by kernel id and runs one task at a time, in
// the order the pool sent them (the pool may have several in flight: it pipelines tiny tasks),
// each in a fresh instance with a capped memory (a zeroed one reused from the last tasks when it
// is small). Replies go back several at a time (per-message costs dominate tiny tasks): at the
// end of each message's tasks, or sooner once the oldest unsent one has waited replyHoldMs.
// Which task is running now is in memory shared with the pool (WorkerActivity), so a timeout or a
// cancel still stops exactly the right one. Large outputs are transferred, not copied.
import { parentPort, workerData } from "node:worker_threads";
import { KernelRunError, MemoryPool, runWasmKernel } from "../wasm/run-kernel.js";
import { KernelLog } from "../../common/kernel-log.js";
import { LogMirror } from "./log-mirror.js";
import { useOptimizingWasmTier } from "../wasm/tier.js";
import { epochMs, WorkerActivity, type RunRequest, type RunResponse, type ToWorker } from "./messages.js";

useOptimizingWasmTier();

const data = workerData as { speedFactor?: number; activity: SharedArrayBuffer; replyHoldMs: number; logMirror?: SharedArrayBuffer };
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
/** Notes each task's memory size as run-kernel gives the memory back (linear memory only grows: its peak). */
class MeasuringMemoryPool extends MemoryPool {
  lastBytes = 0;
  override release(memory: WebAssembly.Memory, initialPages: number, maximumPages: number): void {
    this.lastBytes = memory.buffer.byteLength;
    super.release(memory, initialPages, maximumPages);
  }
}
const memoryPool = new MeasuringMemoryPool();
if (!parentPort) throw new Error("kernel-worker must run in a worker thread");
const port = parentPort;

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
});

function run(req: RunRequest): void {
  if (req.module) modules.set(req.kernelId, req.module);
  const module = modules.get(req.kernelId);
  const started = performance.now();
  logMirror?.begin(req.id);
  activity.begin(req.id, epochMs());
  let reply: RunResponse;
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
      const output = runWasmKernel(module, input, { memoryLimitBytes: req.memoryLimitBytes, seed: req.seed, memoryPool, ...(shared ? { sharedInputs: shared } : {}), ...(log ? { log } : {}) });
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
  if (unsent.length === 0) oldestUnsentAt = performance.now();
  unsent.push(reply);
}
