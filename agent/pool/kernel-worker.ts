// A kernel worker thread: keeps compiled modules by kernel id and runs one task at a time, in
// the order the pool sent them (the pool may have several in flight: it pipelines tiny tasks),
// each in a fresh instance with a capped memory (a zeroed one reused from the last tasks when it
// is small). Every reply is posted before the next task starts, so the pool always knows which
// task is running. Output buffers are transferred, not copied.
import { parentPort, workerData } from "node:worker_threads";
import { KernelRunError, MemoryPool, runWasmKernel } from "../wasm/run-kernel.js";
import { useOptimizingWasmTier } from "../wasm/tier.js";
import type { RunRequest, RunResponse, ToWorker } from "./messages.js";

useOptimizingWasmTier();

// Testing aid (agent --speed-factor): hold the worker for runMs × (1/f − 1) more, so the node is
// really slower — its throughput drops, calibration included — not just reported as slower.
const speedFactor = Number((workerData as { speedFactor?: number } | null)?.speedFactor ?? 1);
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const stretch = (started: number) => {
  if (!(speedFactor > 0 && speedFactor < 1)) return;
  const extra = (performance.now() - started) * (1 / speedFactor - 1);
  if (extra >= 1) Atomics.wait(sleeper, 0, 0, extra);
  else for (const end = performance.now() + extra; performance.now() < end; );
};

const modules = new Map<string, WebAssembly.Module>();
const memoryPool = new MemoryPool();
if (!parentPort) throw new Error("kernel-worker must run in a worker thread");
const port = parentPort;

port.on("message", (msg: ToWorker) => {
  if (msg.type === "batch") for (const req of msg.requests) run(req);
  else run(msg);
});

function run(req: RunRequest): void {
  if (req.module) modules.set(req.kernelId, req.module);
  const module = modules.get(req.kernelId);
  const started = performance.now();
  let reply: RunResponse;
  if (!module) {
    reply = { type: "failed", id: req.id, code: "INVALID_KERNEL", message: `worker has no module for ${req.kernelId}`, runMs: 0 };
    port.postMessage(reply);
    return;
  }
  try {
    const input = new Uint8Array(req.input, req.inputOffset, req.inputLength);
    const output = runWasmKernel(module, input, { memoryLimitBytes: req.memoryLimitBytes, seed: req.seed, memoryPool });
    stretch(started);
    reply = { type: "done", id: req.id, output, runMs: performance.now() - started };
    // Large outputs move by transfer; a small one is cheaper to copy with the message.
    port.postMessage(reply, output.byteLength >= 64 * 1024 ? [output] : []);
  } catch (err) {
    const code = err instanceof KernelRunError ? err.code : "TRAP";
    reply = { type: "failed", id: req.id, code, message: (err as Error).message, runMs: performance.now() - started };
    port.postMessage(reply);
  }
}
