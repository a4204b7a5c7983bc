// Runs the tasks assigned to this agent: WebAssembly kernels in the worker pool, GPU kernels
// through GPU support. It applies this agent's task policy (memory cap, default timeout),
// tracks which attempts it holds so cancels and a lost session reach them, classifies every
// failure into the task-error taxonomy and queues each task's updates in the outbox.
import os from "node:os";
import type { AgentConfig } from "../common/config.js";
import type { Logger } from "../common/logger.js";
import type { Assignment, Cancellation, TaskUpdateIn } from "../common/types.js";
import { taskErrorProto } from "../common/task-errors.js";
import { GpuSupport } from "./gpu/gpu-support.js";
import type { AgentMetrics } from "./metrics.js";
import { TaskFailure, type PoolHandle } from "./pool/types.js";
import { WorkerPool } from "./pool/worker-pool.js";
import type { UpdateOutbox, UpdateReceipt } from "./update-outbox.js";
import { ModuleCache } from "./wasm/module-cache.js";
import { taskKey } from "../common/task-key.js";
import { MAX_SESSION_OUTPUT_BYTES } from "../common/proto.js";
import { BlobCache, type BlobFetcher } from "./blob-cache.js";
import { logBytes } from "../common/kernel-log.js";
import type { OutputRef } from "./output-upload.js";

/** Where outputs by reference go: the scheduler's threshold (0 = never) and its UploadOutput. */
export interface OutputUploader {
  byRefBytes(): number;
  upload(task: { jobId: string; taskIndex: number; attempt: number }, data: Uint8Array): Promise<OutputRef>;
}

/** One attempt this agent holds. `cancelled` stops it at the next step when no handle exists yet. */
type RunningEntry = { handle?: PoolHandle; cancelled: boolean; attempt: number };

const backendOf = (a: Assignment) => (a.kind === "KERNEL_KIND_GPU" ? "gpu" : "wasm");

/** An output no message may carry would reset the session and come back on every retry: fail it for good instead. */
function checkOutputSize(output: Uint8Array, logs?: string[]): void {
  // The log is capped far below the message's headroom (MAX_KERNEL_LOG_BYTES), but counts all the same.
  if (output.byteLength + logBytes(logs) > MAX_SESSION_OUTPUT_BYTES) {
    throw new TaskFailure("OUTPUT_TOO_LARGE", `the task's ${output.byteLength}-byte output is over the ${MAX_SESSION_OUTPUT_BYTES} bytes a result may have; not retryable: make the task's output smaller (split the task)`, logs);
  }
}

export class TaskRunner {
  readonly pool: WorkerPool;
  readonly gpu: GpuSupport;
  private readonly modules: ModuleCache;
  /** Inputs by reference and shared inputs, fetched once per agent and kept by sha256. */
  readonly blobs: BlobCache;
  private readonly running = new Map<string, RunningEntry>();

  constructor(
    private readonly config: AgentConfig,
    private readonly log: Logger,
    private readonly metrics: AgentMetrics,
    private readonly outbox: UpdateOutbox,
    fetchKernel: (kernelId: string) => Promise<Uint8Array>,
    fetchBlob: BlobFetcher,
    private readonly outputs?: OutputUploader,
  ) {
    this.blobs = new BlobCache(config.blobCacheMb * 1024 * 1024, fetchBlob);
    metrics.observeBlobs(() => this.blobs.snapshot());
    // Reserved cores are the host's: fewer workers, never none.
    const cores = os.availableParallelism();
    const workers = Math.max(1, Math.min(config.workers || cores, cores - config.reserveCores));
    this.pool = new WorkerPool({
      size: workers,
      speedFactor: config.speedFactor,
      memoryPool: { maxTotalBytes: config.memoryPoolMb * 1024 * 1024 },
      outputPool: { maxTotalBytes: config.outputPoolMb * 1024 * 1024 },
    });
    this.modules = new ModuleCache(fetchKernel);
    this.gpu = new GpuSupport(
      { mode: config.gpu === "off" ? "cpu" : "auto", memoryLimitMb: config.gpuMemoryLimitMb, calibrate: config.calibrate },
      log,
      fetchKernel,
    );
  }

  /** Attempts held now (running, queued, or fetching their kernel). */
  get held(): number {
    return this.running.size;
  }

  /** Tasks running and waiting on this node, CPU and GPU together (for the heartbeat's load). */
  load(): { runningTasks: number; queuedTasks: number } {
    const stats = this.pool.getStats();
    const gpuStats = this.gpu.stats();
    return { runningTasks: stats.running + gpuStats.running, queuedTasks: stats.queued + gpuStats.queued };
  }

  /** Resolves once nothing runs or waits in the pool or on the GPU. */
  async idle(): Promise<void> {
    await Promise.all([this.pool.idle(), this.gpu.idle()]);
  }

  cancel({ jobId, taskIndexes }: Cancellation): void {
    for (const [key, entry] of this.running) {
      const [job, index] = key.split("/");
      if (job !== jobId) continue;
      if (taskIndexes.length > 0 && !taskIndexes.includes(Number(index))) continue;
      entry.cancelled = true;
      entry.handle?.cancel("job cancelled");
    }
    this.log.info({ event: "cancel", jobId, tasks: taskIndexes.length || "all" }, "cancellation received");
  }

  /** The scheduler has re-placed everything this node held: stop it all and report none of it. */
  abandonAll(reason: string): void {
    for (const entry of this.running.values()) {
      entry.cancelled = true;
      entry.handle?.cancel(reason);
    }
    this.running.clear();
  }

  async run(a: Assignment): Promise<void> {
    const key = taskKey(a.jobId, a.taskIndex);
    const entry: RunningEntry = { cancelled: false, attempt: a.attempt };
    this.running.set(key, entry);
    const update = (u: Omit<TaskUpdateIn, "jobId" | "taskIndex" | "attempt">, receipt?: UpdateReceipt, release?: () => void) =>
      this.outbox.send(entry, { jobId: a.jobId, taskIndex: a.taskIndex, attempt: a.attempt, ...u }, receipt, release);
    // Gives the output's buffer back to be recycled (PoolResult.release): in `finally` below when
    // nothing else got the output (a reset session, a failed check, an upload by reference, done
    // by then), else once the link holds the update no more (the outbox calls it).
    let releaseOutput: (() => void) | undefined;
    // A success counts once its result reaches the scheduler; one refused on the way (e.g. over
    // Kafka's record limit) counts as the failure the scheduler records instead.
    const succeeded = (runMs: number, waitMs: number): UpdateReceipt => ({
      delivered: () => this.metrics.taskDone(a.kernelId, backendOf(a), "succeeded", runMs, waitMs),
      failed: (code) => this.metrics.taskDone(a.kernelId, backendOf(a), "failed", runMs, waitMs, code),
    });
    const started = (waitMs: number) => this.outbox.noteRunning(entry, { jobId: a.jobId, taskIndex: a.taskIndex, attempt: a.attempt, state: "TASK_STATE_RUNNING", waitMs });
    // Blobs this attempt holds pinned in the cache (released when it ends).
    const pinned: string[] = [];
    const use = { jobId: a.jobId, taskIndex: a.taskIndex };
    const blob = async (ref: { sha256: string; sizeBytes: string }) => {
      const data = await this.blobs.acquire(ref, use);
      pinned.push(ref.sha256);
      return data;
    };
    try {
      // One after another: a failed fetch leaves no acquire running that would pin after the release below.
      const input = a.inputRef ? await blob(a.inputRef) : a.input;
      const shared: Uint8Array[] = [];
      for (const s of a.sharedInputs) shared.push(await blob(s.ref!));
      if (entry.cancelled) throw new TaskFailure("CANCELLED", "job cancelled");
      if (a.kind === "KERNEL_KIND_GPU") {
        // gpu.js reads an input it owns (the executor is another process): a plain copy.
        const result = await this.gpu.run({ ...a, input: input.buffer instanceof SharedArrayBuffer ? Buffer.from(input) : input }, started, (h) => {
          entry.handle = h;
          if (entry.cancelled) h.cancel("job cancelled");
        });
        if (this.running.get(key) !== entry) return;
        checkOutputSize(result.output);
        const sent = await this.outputOf(a, result.output);
        if (this.running.get(key) !== entry) return;
        update({ state: "TASK_STATE_SUCCEEDED", ...sent, runMs: result.runMs, waitMs: result.waitMs, backend: result.backend }, succeeded(result.runMs, result.waitMs));
        return;
      }
      const module = await this.modules.get(a.kernelId);
      if (entry.cancelled) throw new TaskFailure("CANCELLED", "job cancelled");
      const requested = Number(a.memoryLimitBytes);
      const maxBytes = this.config.maxMemoryLimitMb * 1024 * 1024;
      if (requested > maxBytes) {
        throw new TaskFailure("MEMORY_LIMIT", `task asks for ${requested} bytes of kernel memory; this agent allows at most ${maxBytes}`);
      }
      const handle = this.pool.run({
        kernelId: a.kernelId,
        module,
        input,
        ...(shared.length > 0 ? { shared } : {}),
        timeoutMs: a.timeoutMs || 60_000,
        memoryLimitBytes: requested || this.config.memoryLimitMb * 1024 * 1024,
        seed: a.taskIndex + 1,
        log: { maxBytes: this.config.kernelLogBytes, maxLines: this.config.kernelLogLines },
        onStart: started,
      });
      entry.handle = handle;
      const result = await handle.promise;
      releaseOutput = result.release;
      if (this.running.get(key) !== entry) return; // the session was reset; the scheduler re-placed it
      checkOutputSize(result.output, result.logs);
      const sent = await this.outputOf(a, result.output);
      if (this.running.get(key) !== entry) return;
      // Inline, the update holds the output's bytes until the link is done with them; by reference, the upload is done.
      const held = "output" in sent ? releaseOutput : undefined;
      if (held) releaseOutput = undefined;
      update({ state: "TASK_STATE_SUCCEEDED", ...sent, runMs: result.runMs, waitMs: result.waitMs, backend: "wasm", ...(result.logs ? { logs: result.logs } : {}) }, succeeded(result.runMs, result.waitMs), held);
    } catch (err) {
      if (this.running.get(key) !== entry) return;
      // Failures are classified where they happen; anything else is an internal (transient) fault.
      const failure = err instanceof TaskFailure ? err : new TaskFailure("INTERNAL", (err as Error).message);
      this.metrics.taskDone(a.kernelId, backendOf(a), failure.code === "CANCELLED" ? "cancelled" : "failed", 0, -1, failure.code);
      if (failure.code === "CANCELLED") update({ state: "TASK_STATE_CANCELLED", error: { code: "CANCELLED", message: failure.message } });
      else {
        update({ state: "TASK_STATE_FAILED", error: taskErrorProto({ code: failure.code === "SHUTDOWN" ? "AGENT_LOST" : failure.code, message: failure.message }), ...(failure.logs ? { logs: failure.logs } : {}) });
        this.log.warn({ event: "task_failed", jobId: a.jobId, task: a.taskIndex, code: failure.code, err: failure.message }, "task failed");
      }
    } finally {
      releaseOutput?.();
      for (const sha of pinned) this.blobs.release(sha);
      this.outbox.forget(entry);
      if (this.running.get(key) === entry) this.running.delete(key);
    }
  }

  /** The update's output: inline, or (at least byRefBytes) uploaded first and named by reference. */
  private async outputOf(a: Assignment, output: Uint8Array): Promise<{ output: Uint8Array } | { outputRef: { sha256: string; sizeBytes: string } }> {
    const threshold = this.outputs?.byRefBytes() ?? 0;
    if (!this.outputs || threshold <= 0 || output.byteLength < threshold) return { output };
    const ref = await this.outputs.upload({ jobId: a.jobId, taskIndex: a.taskIndex, attempt: a.attempt }, output);
    return { outputRef: { sha256: ref.sha256, sizeBytes: String(ref.sizeBytes) } };
  }

  /** Stops the workers and the GPU executors; what still runs fails with SHUTDOWN. */
  async closePool(): Promise<void> {
    await this.pool.close();
  }

  async closeGpu(): Promise<void> {
    await this.gpu.close();
  }
}
