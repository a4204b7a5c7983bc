// Agent metrics (prom-client), in a registry of their own. Kernel histograms are labelled by
// kernel and backend; the kernel label is the kernel's registered short name (or a 12-digit
// id prefix), and after MAX_KERNEL_LABELS distinct values new kernels share "other", so a
// user registering many kernels cannot blow up the series count. No per-task labels.
import { execFile } from "node:child_process";
import os from "node:os";
import type { BlobCacheStats } from "./blob-cache.js";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { PoolStats } from "./pool/types.js";
import { CpuSampler, memoryUsedBytes } from "./load-sampler.js";

const MAX_KERNEL_LABELS = 64;
/** The window of distx_agent_cpu_utilization: long enough that os.cpus()'s 10 ms ticks do not dominate it. */
const CPU_WINDOW_MS = 2000;
/** Kernel times from 100 µs to 10 min. */
const KERNEL_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600];

export type Backend = "wasm" | "gpu";
export type Outcome = "succeeded" | "failed" | "cancelled";

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly kernelNames = new Map<string, string>();
  private readonly labelsInUse = new Set<string>();
  private readonly run: Histogram<"kernel" | "backend">;
  private readonly wait: Histogram<"kernel" | "backend">;
  private readonly completed: Counter<"kernel" | "backend" | "outcome">;
  private readonly failures: Counter<"kernel" | "backend" | "code">;
  private readonly restarts: Counter;
  private readonly info: Gauge<"node" | "version">;
  private readonly connected: Gauge;
  private readonly reconnects: Counter;
  private readonly droppedRecords: Counter<"reason">;
  private readonly hostLoad: Gauge;
  private readonly backingOff: Gauge;
  private gpuUtil: number[] = [];
  private gpuTimer?: NodeJS.Timeout;
  private cpuTimer?: NodeJS.Timeout;
  /** Host CPU utilisation over the last complete CPU_WINDOW_MS window. */
  private cpuUtil = 0;

  constructor(pool: () => PoolStats, version: string) {
    const registry = this.registry;
    collectDefaultMetrics({ register: registry });
    // Sampled on a timer of its own, not per scrape: a "since the previous scrape" gauge was
    // corrupted by any second scraper (eight curls in a row at 3 % CPU read 0.03..1, the
    // shortest windows being a few os.cpus() ticks).
    const cpu = new CpuSampler();
    this.cpuTimer = setInterval(() => (this.cpuUtil = cpu.sample()), CPU_WINDOW_MS);
    this.cpuTimer.unref();
    const stat = (name: string, help: string, read: (s: PoolStats) => number) =>
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          this.set(read(pool()));
        },
      });
    stat("distx_agent_tasks_running", "Tasks running in kernel workers now.", (s) => s.running);
    stat("distx_agent_tasks_queued", "Tasks accepted by the agent and waiting for a worker.", (s) => s.queued);
    stat("distx_agent_workers", "Kernel worker threads.", (s) => s.size);
    stat("distx_agent_output_buffers_reused", "Kept output buffers sent with a later task for its output (recycled once the scheduler had their result), since start.", (s) => s.outputBuffersReused);
    stat("distx_agent_output_pool_bytes", "Bytes of output buffers kept for later outputs now (outputPoolMb bounds it).", (s) => s.outputPoolBytes);
    stat("distx_agent_pipeline_max_in_flight", "Most tasks one kernel worker has held at once (tiny tasks are pipelined; 1 = never).", (s) => s.maxInFlight);
    const cpuGauge: Gauge = new Gauge({
      name: "distx_agent_cpu_utilization",
      help: `Host CPU utilisation 0..1 over the last ${CPU_WINDOW_MS / 1000} s (the same for every scraper).`,
      registers: [registry],
      collect: () => cpuGauge.set(this.cpuUtil),
    });
    new Gauge({
      name: "distx_agent_memory_utilization",
      help: "Host memory in use as a ratio 0..1 of total.",
      registers: [registry],
      collect() {
        this.set(memoryUsedBytes() / os.totalmem());
      },
    });
    new Gauge({
      name: "distx_agent_memory_used_bytes",
      help: "Host memory in use.",
      registers: [registry],
      collect() {
        this.set(memoryUsedBytes());
      },
    });
    const self = this;
    new Gauge({
      name: "distx_agent_gpu_utilization",
      help: "GPU utilisation 0..1 per device, where the driver tells (nvidia-smi); absent otherwise.",
      labelNames: ["gpu"],
      registers: [registry],
      collect() {
        this.reset();
        self.gpuUtil.forEach((u, i) => this.set({ gpu: String(i) }, u));
      },
    });
    this.info = new Gauge({
      name: "distx_agent_info",
      help: "Always 1; labels map this scrape target to its scheduler node id and agent version.",
      labelNames: ["node", "version"],
      registers: [registry],
    });
    this.info.set({ node: "", version }, 1);
    this.run = new Histogram({
      name: "distx_kernel_run_seconds",
      help: "Kernel execution time in a worker, by kernel and backend.",
      labelNames: ["kernel", "backend"],
      buckets: KERNEL_BUCKETS,
      registers: [registry],
    });
    this.wait = new Histogram({
      name: "distx_kernel_wait_seconds",
      help: "Time a task waited on the agent for a free worker, by kernel and backend.",
      labelNames: ["kernel", "backend"],
      buckets: KERNEL_BUCKETS,
      registers: [registry],
    });
    this.completed = new Counter({
      name: "distx_agent_tasks_completed_total",
      // A success counts once its result reaches the scheduler (written on the session, or
      // acknowledged by Kafka); a result refused on the way counts as the failure recorded instead.
      help: "Tasks the agent finished, by kernel, backend and outcome (as the scheduler records it).",
      labelNames: ["kernel", "backend", "outcome"],
      registers: [registry],
    });
    this.failures = new Counter({
      name: "distx_agent_task_failures_total",
      help: "Failed tasks by kernel, backend and failure code (TRAP, TIMEOUT, MEMORY_LIMIT, ...).",
      labelNames: ["kernel", "backend", "code"],
      registers: [registry],
    });
    this.restarts = new Counter({ name: "distx_agent_worker_restarts_total", help: "Kernel workers replaced after a timeout, cancel or crash.", registers: [registry] });
    this.connected = new Gauge({ name: "distx_agent_connected", help: "1 while the agent holds a session with the scheduler, else 0.", registers: [registry] });
    this.hostLoad = new Gauge({ name: "distx_agent_host_load", help: "The host's own CPU load 0..1 of the agent's cores: all use minus this agent's (its kernels').", registers: [registry] });
    this.backingOff = new Gauge({ name: "distx_agent_backing_off", help: "1 while the agent backs off for its host's own load (maxHostLoad), else 0.", registers: [registry] });
    this.connected.set(0);
    this.reconnects = new Counter({
      name: "distx_agent_reconnects_total",
      help: "Attempts to register with the scheduler again after losing it (each retry counts).",
      registers: [registry],
    });
    this.droppedRecords = new Counter({
      name: "distx_agent_dropped_assignment_records_total",
      help: "Assignments records for this node dropped unread because they did not open with its key (secure clusters): unsealed, bad_header, other_key, bad_ciphertext.",
      labelNames: ["reason"],
      registers: [registry],
    });
  }

  /** An assignments record for this node that did not open (common/record-seal.ts): dropped, never read. */
  assignmentRecordDropped(reason: string): void {
    this.droppedRecords.inc({ reason });
  }

  /** The blob cache's counts (inputs by reference, shared inputs), read at each scrape. */
  observeBlobs(read: () => BlobCacheStats): void {
    const gauge = (name: string, help: string, pick: (s: BlobCacheStats) => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(pick(read()));
        },
      });
    gauge("distx_agent_blob_fetches_total", "Blobs (inputs by reference, shared inputs) fetched from the scheduler.", (s) => s.fetches);
    gauge("distx_agent_blob_fetched_bytes_total", "Bytes of blobs fetched from the scheduler.", (s) => s.fetchedBytes);
    gauge("distx_agent_blob_cache_hits_total", "Blob reads answered by the agent's cache (or a fetch already under way).", (s) => s.hits);
    gauge("distx_agent_blob_cache_bytes", "Bytes of blobs the agent holds now.", (s) => s.bytes);
  }

  setConnected(up: boolean): void {
    this.connected.set(up ? 1 : 0);
  }

  setHostShare(hostLoad: number, backingOff: boolean): void {
    this.hostLoad.set(hostLoad);
    this.backingOff.set(backingOff ? 1 : 0);
  }

  reconnectAttempt(): void {
    this.reconnects.inc();
  }

  setNodeId(nodeId: string, version: string): void {
    this.info.reset();
    this.info.set({ node: nodeId, version }, 1);
  }

  /** Remembers a kernel's registered name so its label reads well. */
  noteKernel(kernelId: string, name: string | undefined): void {
    if (name && name !== "unnamed") this.kernelNames.set(kernelId, name);
    this.succeededChildren.clear();
  }

  kernelLabel(kernelId: string): string {
    const raw = (this.kernelNames.get(kernelId) ?? kernelId.slice(0, 12)).replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 48);
    if (this.labelsInUse.has(raw)) return raw;
    if (this.labelsInUse.size >= MAX_KERNEL_LABELS) return "other";
    this.labelsInUse.add(raw);
    return raw;
  }

  /** Labelled children of the hot-path metrics per (kernel, backend): resolving labels per task costs more than the observation. */
  private readonly succeededChildren = new Map<string, { completed: { inc(): void }; run: { observe(v: number): void }; wait: { observe(v: number): void } }>();

  taskDone(kernelId: string, backend: Backend, outcome: Outcome, runMs: number, waitMs: number, code?: string): void {
    if (outcome === "succeeded") {
      const key = `${kernelId}|${backend}`;
      let c = this.succeededChildren.get(key);
      if (!c) {
        const kernel = this.kernelLabel(kernelId);
        c = { completed: this.completed.labels({ kernel, backend, outcome }), run: this.run.labels({ kernel, backend }), wait: this.wait.labels({ kernel, backend }) };
        this.succeededChildren.set(key, c);
      }
      c.completed.inc();
      c.run.observe(runMs / 1000);
      if (waitMs >= 0) c.wait.observe(waitMs / 1000);
      return;
    }
    const kernel = this.kernelLabel(kernelId);
    this.completed.inc({ kernel, backend, outcome });
    if (waitMs >= 0 && outcome !== "cancelled") this.wait.observe({ kernel, backend }, waitMs / 1000);
    if (outcome === "failed") this.failures.inc({ kernel, backend, code: code ?? "INTERNAL" });
  }

  workerRestarted(): void {
    this.restarts.inc();
  }

  /** Starts sampling GPU utilisation if nvidia-smi answers; silently does nothing otherwise. */
  startGpuSampling(intervalMs = 5000): void {
    const probe = () =>
      execFile("nvidia-smi", ["--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"], { timeout: 3000 }, (err, stdout) => {
        if (err) {
          this.gpuUtil = [];
          if ((err as NodeJS.ErrnoException).code === "ENOENT") clearInterval(this.gpuTimer);
          return;
        }
        this.gpuUtil = stdout
          .split("\n")
          .filter((l) => l.trim() !== "")
          .map((l) => Number(l.trim()))
          .filter((v) => Number.isFinite(v))
          .map((v) => v / 100);
      });
    probe();
    this.gpuTimer = setInterval(probe, intervalMs);
    this.gpuTimer.unref();
  }

  stop(): void {
    clearInterval(this.gpuTimer);
    clearInterval(this.cpuTimer);
  }
}
