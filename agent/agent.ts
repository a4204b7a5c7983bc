// The agent: profiles its host, calibrates, registers with the scheduler and then holds one
// session stream over which it receives assignments and cancellations and sends heartbeats
// and task updates. Kernels run in the worker pool; this class only moves messages.
import os from "node:os";
import * as grpc from "@grpc/grpc-js";
import { Coalescer } from "../common/coalescer.js";
import type { AgentConfig } from "../common/config.js";
import type { Logger } from "../common/logger.js";
import { CHANNEL_OPTIONS, v1 } from "../common/proto.js";
import type {
  AgentMessageIn,
  AgentServiceGrpcClient,
  Assignment,
  Cancellation,
  HardwareProfileIn,
  SchedulerMessage,
  TaskUpdateIn,
} from "../common/types.js";
import { AdminServer } from "../common/admin-http.js";
import { fetchErrorCode, taskErrorProto } from "../common/task-errors.js";
import { calibrate, type CalibrationResult } from "./calibrate.js";
import { AgentMetrics } from "./metrics.js";
import { Backoff } from "../common/backoff.js";
import { GpuSupport } from "./gpu/gpu-support.js";
import { KafkaAgentLink, type KafkaRouteShape } from "./kafka-link.js";
import { CpuSampler, memoryUsedBytes } from "./load-sampler.js";
import { TaskFailure, WorkerPool, type PoolHandle } from "./pool/worker-pool.js";
import { buildProfile, readHost } from "./profile.js";
import { ModuleCache } from "./wasm/module-cache.js";
import { useOptimizingWasmTier } from "./wasm/tier.js";
import { kafkaSecurity } from "../common/backend-security.js";
import { identityDir, join, loadIdentity, mtlsCredentials, renew, type NodeIdentity } from "./identity.js";

export const AGENT_VERSION = "0.1.0";

type Session = grpc.ClientDuplexStream<AgentMessageIn, SchedulerMessage>;

const taskKey = (jobId: string, index: number) => `${jobId}/${index}`;

/**
 * How long a task's RUNNING note waits before it is sent. A task that ends by then needs none (its
 * final update says it started), so a tiny task costs one update, not two, and its result does
 * not queue behind the produce request of its own RUNNING note.
 */
export const RUNNING_NOTE_DELAY_MS = 5;

/** After this many reconnect attempts in a row, a retry is logged at most once per RETRY_LOG_EVERY_MS. */
const RETRIES_LOGGED_IN_FULL = 5;
const RETRY_LOG_EVERY_MS = 30_000;
/** How long a transient kernel-fetch failure is retried on the agent before the attempt fails (retryably). */
const FETCH_RETRY_MS = 5000;

type RunningEntry = { handle?: PoolHandle; cancelled: boolean; attempt: number };

export class Agent {
  /** One client per configured scheduler (active + standbys); `current` is the one in use. */
  private clients: AgentServiceGrpcClient[];
  /** The node certificate (absent with --insecure) and the timer that renews it. */
  identity?: NodeIdentity;
  private renewTimer?: NodeJS.Timeout;
  private current = 0;
  private link?: KafkaAgentLink;
  private readonly pool: WorkerPool;
  private readonly modules: ModuleCache;
  private readonly cpu = new CpuSampler();
  private readonly running = new Map<string, RunningEntry>();
  /** RUNNING notes not sent yet (see RUNNING_NOTE_DELAY_MS), by task, and the timer that sends them. */
  private readonly runningNotes = new Map<RunningEntry, TaskUpdateIn>();
  private runningNotesTimer?: NodeJS.Timeout;
  readonly gpu: GpuSupport;
  private session?: Session;
  /**
   * Task updates of one event-loop turn go to the scheduler as one message (over Kafka when the
   * scheduler uses it, else on the session), less the RUNNING notes their own final update made moot.
   */
  private readonly updates = new Coalescer<TaskUpdateIn>((batch) => {
    const items = dropSupersededRunning(batch);
    if (this.link) this.link.sendUpdates(items);
    else this.session?.write(items.length === 1 ? { update: items[0]! } : { updates: { items } });
  });
  private heartbeatTimer?: NodeJS.Timeout;
  private draining = false;
  private stopped = false;
  private sessionEnded?: () => void;
  private admin?: AdminServer;
  readonly metrics: AgentMetrics;
  nodeId = "";
  profile?: HardwareProfileIn;
  calibration?: CalibrationResult;

  constructor(
    private readonly config: AgentConfig,
    private readonly log: Logger,
  ) {
    // Fail at start, naming the setting, when Kafka credentials are set up wrong (read again at
    // each link open, so a rotated password file is picked up on reconnect).
    kafkaSecurity(config);
    useOptimizingWasmTier();
    const workers = config.workers || os.availableParallelism();
    this.pool = new WorkerPool({ size: workers, speedFactor: config.speedFactor });
    this.metrics = new AgentMetrics(() => this.pool.getStats(), AGENT_VERSION);
    this.pool.on("restart", () => {
      this.metrics.workerRestarted();
      this.log.warn({ event: "worker_restarted" }, "kernel worker replaced");
    });
    // Secure clusters: the clients are made in start(), once the node certificate is at hand.
    this.clients = config.insecure ? this.makeClients(grpc.credentials.createInsecure()) : [];
    this.modules = new ModuleCache((id) => this.fetchKernel(id));
    this.gpu = new GpuSupport(
      { mode: config.gpu === "off" ? "cpu" : "auto", memoryLimitMb: config.gpuMemoryLimitMb, calibrate: config.calibrate },
      log,
      (id) => this.fetchKernel(id),
    );
  }

  private makeClients(creds: grpc.ChannelCredentials): AgentServiceGrpcClient[] {
    const V1 = v1();
    return this.config.scheduler.split(",").map((addr) => new V1.AgentService(addr, creds, CHANNEL_OPTIONS) as unknown as AgentServiceGrpcClient);
  }

  /** Loads the node certificate, or joins with the join token to get one; then mTLS from here on. */
  private async setUpIdentity(): Promise<void> {
    if (this.config.insecure) {
      this.log.warn({ event: "insecure_mode" }, "running with --insecure: no TLS, the scheduler is not verified");
      return;
    }
    this.identity = loadIdentity(identityDir(this.config)) ?? (await join(this.config, this.log));
    this.clients = this.makeClients(mtlsCredentials(this.identity));
    this.scheduleRenewal();
  }

  /** Renews at 2/3 of the certificate's lifetime; on failure, tries again after a tenth of what is left. */
  private scheduleRenewal(): void {
    const id = this.identity;
    if (!id || this.stopped) return;
    const at = id.notBeforeMs + ((id.notAfterMs - id.notBeforeMs) * 2) / 3;
    clearTimeout(this.renewTimer);
    if (at - Date.now() > 86_400_000) {
      // setTimeout cannot wait longer than ~24.8 days; look again tomorrow.
      this.renewTimer = setTimeout(() => this.scheduleRenewal(), 86_400_000);
      this.renewTimer.unref();
      return;
    }
    this.renewTimer = setTimeout(() => {
      renew(this.config, id, this.client).then(
        (next) => {
          this.identity = next;
          // New calls use the new certificate; the open session keeps its connection.
          this.clients = this.makeClients(mtlsCredentials(next));
          this.log.info({ event: "cert_renewed", nodeId: next.nodeId, notAfter: new Date(next.notAfterMs).toISOString() }, "node certificate renewed");
          this.scheduleRenewal();
        },
        (err: Error) => {
          this.log.warn({ event: "cert_renew_failed", err: (err as grpc.ServiceError).details || err.message }, "could not renew the node certificate; retrying");
          clearTimeout(this.renewTimer);
          this.renewTimer = setTimeout(() => this.scheduleRenewal(), Math.max(1000, (id.notAfterMs - Date.now()) / 10));
          this.renewTimer.unref();
        },
      );
    }, Math.max(0, at - Date.now()));
    this.renewTimer.unref();
  }

  private get client(): AgentServiceGrpcClient {
    return this.clients[this.current % this.clients.length]!;
  }

  get workers(): number {
    return this.pool.size;
  }

  /** Profiles, calibrates, registers and opens the session. Resolves once the session is open. */
  async start(): Promise<void> {
    await this.startAdmin();
    const raw = await readHost();
    this.calibration = this.config.calibrate ? await calibrate(this.pool) : undefined;
    this.profile = buildProfile(raw, this.pool.size, this.config.labels);
    if (this.calibration) {
      this.profile.calibration = {
        kernel: this.calibration.kernel,
        opsPerSecond: this.calibration.opsPerSecond,
        wallMs: this.calibration.wallMs,
      };
    }
    await this.gpu.start(this.profile);
    await this.setUpIdentity();
    this.log.info(
      {
        event: "profiled",
        cpu: this.profile.cpu?.model,
        logicalCores: this.profile.cpu?.logicalCores,
        simd: this.profile.cpu?.simd,
        gpus: this.profile.gpus?.length ?? 0,
        workers: this.pool.size,
        calibrationOpsPerSecond: this.calibration?.opsPerSecond,
      },
      "host profiled",
    );
    await this.connect(true);
  }

  /**
   * Registers and opens the session. At start-up, connectTimeoutMs bounds the wait (a wrong
   * address fails fast, with a clear error). Once registered, a lost scheduler is waited for
   * for ever: an installed agent must come back by itself when its scheduler does.
   */
  private async connect(initial: boolean): Promise<void> {
    const deadline = initial && this.config.connectTimeoutMs ? Date.now() + this.config.connectTimeoutMs : Infinity;
    const backoff = new Backoff(200, initial ? 5000 : 10_000);
    let lastLoggedMs = 0;
    let suppressed = 0;
    for (;;) {
      if (this.stopped) throw new AgentStoppedError();
      try {
        const reply = await new Promise<{ nodeId: string; heartbeatIntervalMs: number; kafka?: KafkaRouteShape | null }>((resolve, reject) =>
          this.client.Register(
            { profile: this.profile, agentVersion: AGENT_VERSION },
            { deadline: Date.now() + 5000 },
            (err, res) => (err || !res ? reject(err ?? new Error("empty reply")) : resolve(res)),
          ),
        );
        this.nodeId = reply.nodeId;
        this.metrics.setNodeId(reply.nodeId, AGENT_VERSION);
        await this.openKafkaLink(reply.kafka);
        this.openSession(reply.heartbeatIntervalMs || 1000);
        this.metrics.setConnected(true);
        this.log.info({ event: "registered", nodeId: this.nodeId, scheduler: this.config.scheduler, attempts: backoff.attempts + 1 }, "registered with scheduler");
        return;
      } catch (err) {
        if (this.stopped) throw new AgentStoppedError();
        const delay = backoff.next();
        if (Date.now() + delay > deadline) {
          throw new Error(`cannot reach the scheduler at ${this.config.scheduler} within ${this.config.connectTimeoutMs} ms (connectTimeoutMs): ${(err as Error).message}`);
        }
        if (!initial) this.metrics.reconnectAttempt();
        // Every retry is logged at first; in a long outage, once per RETRY_LOG_EVERY_MS with the count left out.
        const now = Date.now();
        if (backoff.attempts <= RETRIES_LOGGED_IN_FULL || now - lastLoggedMs >= RETRY_LOG_EVERY_MS) {
          this.log.warn(
            { event: initial ? "register_retry" : "reconnect_retry", attempt: backoff.attempts, retryInMs: delay, suppressed, scheduler: this.config.scheduler, err: (err as Error).message },
            initial ? "scheduler not reachable yet" : "scheduler not reachable; retrying",
          );
          lastLoggedMs = now;
          suppressed = 0;
        } else suppressed++;
        this.current++; // try the next scheduler (a standby may be the active one now)
        await new Promise((r) => setTimeout(r, delay).unref());
      }
    }
  }

  /** With a Kafka queue, assignments come from Kafka and updates go back through it. */
  private async openKafkaLink(route: KafkaRouteShape | null | undefined): Promise<void> {
    const old = this.link;
    this.link = undefined;
    await old?.close();
    if (!route || route.brokers.length === 0) return;
    const brokers = this.config.kafkaBrokers ? this.config.kafkaBrokers.split(",") : route.brokers;
    this.link = await KafkaAgentLink.open(
      { ...route, brokers },
      this.nodeId,
      { assign: (a) => void this.runAssignment(a), cancel: (c) => this.cancelTasks(c) },
      (err) => this.log.warn({ event: "kafka_error", err: err.message }, "Kafka problem; retrying"),
      undefined,
      kafkaSecurity(this.config),
    );
    this.log.info({ event: "kafka_link", topic: route.assignmentsTopic, partition: route.assignmentsPartition }, "reading assignments from Kafka");
  }

  private openSession(heartbeatIntervalMs: number): void {
    const session = this.client.Session();
    this.session = session;
    session.write({ hello: { nodeId: this.nodeId } });
    session.on("data", (msg: SchedulerMessage) => this.onSchedulerMessage(msg));
    const ended = (why: string) => {
      if (this.session !== session) return;
      this.session = undefined;
      if (!this.link) this.updates.clear(); // over Kafka they can still be delivered
      clearInterval(this.heartbeatTimer);
      this.metrics.setConnected(false);
      this.sessionEnded?.();
      if (this.stopped) return;
      // The scheduler has re-placed whatever we held: drop it and start over with a new session.
      this.log.warn({ event: "session_lost", reason: why }, "lost the scheduler session; reconnecting");
      for (const entry of this.running.values()) {
        entry.cancelled = true;
        entry.handle?.cancel("scheduler session lost");
      }
      this.running.clear();
      // Retries for ever; it only ends when the agent stops.
      void this.connect(false).catch((err: Error) => {
        if (!(err instanceof AgentStoppedError)) this.log.error({ event: "reconnect_failed", err: err.message }, "reconnect loop ended unexpectedly");
      });
    };
    session.on("error", (err: grpc.ServiceError) => ended(err.details || err.message));
    session.on("end", () => ended("scheduler closed the session"));
    this.heartbeatTimer = setInterval(() => this.sendHeartbeat(), heartbeatIntervalMs);
    this.heartbeatTimer.unref();
    this.sendHeartbeat();
  }

  private send(msg: AgentMessageIn): void {
    if (msg.update) this.updates.push(msg.update);
    else {
      this.updates.flush(); // a heartbeat never overtakes the updates before it
      this.session?.write(msg);
    }
  }

  private sendHeartbeat(): void {
    const stats = this.pool.getStats();
    const gpuStats = this.gpu.stats();
    const load = {
      ...this.cpu.sampleWithOwn(),
      memoryUsedBytes: String(memoryUsedBytes()),
      runningTasks: stats.running + gpuStats.running,
      queuedTasks: stats.queued + gpuStats.queued,
      gpuUtilization: this.gpu.utilization,
      sampledAtMs: Date.now(),
    };
    this.send({ heartbeat: { draining: this.draining, load } });
    this.link?.sendLoad({ nodeId: this.nodeId, draining: this.draining, load });
  }

  private onSchedulerMessage(msg: SchedulerMessage): void {
    if (msg.assign) void this.runAssignment(msg.assign);
    else if (msg.assigns) for (const a of msg.assigns.items) void this.runAssignment(a);
    else if (msg.cancel) this.cancelTasks(msg.cancel);
  }

  private cancelTasks({ jobId, taskIndexes }: Cancellation): void {
    for (const [key, entry] of this.running) {
      const [job, index] = key.split("/");
      if (job !== jobId) continue;
      if (taskIndexes.length > 0 && !taskIndexes.includes(Number(index))) continue;
      entry.cancelled = true;
      entry.handle?.cancel("job cancelled");
    }
    this.log.info({ event: "cancel", jobId, tasks: taskIndexes.length || "all" }, "cancellation received");
  }

  private async runAssignment(a: Assignment): Promise<void> {
    const key = taskKey(a.jobId, a.taskIndex);
    const entry: RunningEntry = { cancelled: false, attempt: a.attempt };
    this.running.set(key, entry);
    const update = (u: Omit<TaskUpdateIn, "jobId" | "taskIndex" | "attempt">) => {
      // A final update makes a RUNNING note still waiting moot.
      this.runningNotes.delete(entry);
      this.send({ update: { jobId: a.jobId, taskIndex: a.taskIndex, attempt: a.attempt, ...u } });
    };
    const started = (waitMs: number) => this.noteRunning(entry, { jobId: a.jobId, taskIndex: a.taskIndex, attempt: a.attempt, state: "TASK_STATE_RUNNING", waitMs });
    try {
      if (a.kind === "KERNEL_KIND_GPU") {
        const result = await this.gpu.run(a, started, (h) => {
          entry.handle = h;
          if (entry.cancelled) h.cancel("job cancelled");
        });
        if (this.running.get(key) !== entry) return;
        update({ state: "TASK_STATE_SUCCEEDED", output: result.output, runMs: result.runMs, waitMs: result.waitMs, backend: result.backend });
        this.metrics.taskDone(a.kernelId, backendOf(a), "succeeded", result.runMs, result.waitMs);
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
        input: a.input,
        timeoutMs: a.timeoutMs || 60_000,
        memoryLimitBytes: requested || this.config.memoryLimitMb * 1024 * 1024,
        seed: a.taskIndex + 1,
        onStart: started,
      });
      entry.handle = handle;
      const result = await handle.promise;
      if (this.running.get(key) !== entry) return; // the session was reset; the scheduler re-placed it
      update({ state: "TASK_STATE_SUCCEEDED", output: result.output, runMs: result.runMs, waitMs: result.waitMs, backend: "wasm" });
      this.metrics.taskDone(a.kernelId, backendOf(a), "succeeded", result.runMs, result.waitMs);
    } catch (err) {
      if (this.running.get(key) !== entry) return;
      // Failures are classified where they happen; anything else is an internal (transient) fault.
      const failure = err instanceof TaskFailure ? err : new TaskFailure("INTERNAL", (err as Error).message);
      this.metrics.taskDone(a.kernelId, backendOf(a), failure.code === "CANCELLED" ? "cancelled" : "failed", 0, -1, failure.code);
      if (failure.code === "CANCELLED") update({ state: "TASK_STATE_CANCELLED", error: { code: "CANCELLED", message: failure.message } });
      else {
        update({ state: "TASK_STATE_FAILED", error: taskErrorProto({ code: failure.code === "SHUTDOWN" ? "AGENT_LOST" : failure.code, message: failure.message }) });
        this.log.warn({ event: "task_failed", jobId: a.jobId, task: a.taskIndex, code: failure.code, err: failure.message }, "task failed");
      }
    } finally {
      this.runningNotes.delete(entry);
      if (this.running.get(key) === entry) this.running.delete(key);
    }
  }

  /** Queues a RUNNING note; the ones still waiting after RUNNING_NOTE_DELAY_MS go out together. */
  private noteRunning(entry: RunningEntry, note: TaskUpdateIn): void {
    this.runningNotes.set(entry, note);
    this.runningNotesTimer ??= setTimeout(() => this.sendRunningNotes(), RUNNING_NOTE_DELAY_MS);
  }

  private sendRunningNotes(): void {
    this.runningNotesTimer = undefined;
    for (const note of this.runningNotes.values()) this.send({ update: note });
    this.runningNotes.clear();
  }

  /**
   * Fetches a kernel's bytes. Transient failures (scheduler or its store unreachable, deadline)
   * are retried here with capped backoff for up to FETCH_RETRY_MS, then reported as
   * KERNEL_FETCH_FAILED, which the scheduler retries within the attempt budget; only "unknown
   * kernel" is INVALID_KERNEL.
   */
  private async fetchKernel(kernelId: string): Promise<Uint8Array> {
    const until = Date.now() + FETCH_RETRY_MS;
    for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
      const got = await new Promise<{ module: Uint8Array } | { code: number | undefined; message: string }>((resolve) =>
        this.client.FetchKernel({ kernelId }, { deadline: Date.now() + 30_000 }, (err, res) =>
          err || !res
            ? resolve({ code: err?.code, message: err?.details || err?.message || "empty reply" })
            : (this.metrics.noteKernel(kernelId, res.info?.name), resolve({ module: res.module })),
        ),
      );
      if ("module" in got) return got.module;
      const code = fetchErrorCode(got.code);
      if (code !== "KERNEL_FETCH_FAILED" || this.stopped || Date.now() + delay > until) {
        throw new TaskFailure(code, `cannot fetch kernel ${kernelId}: ${got.message}`);
      }
      this.log.warn({ event: "kernel_fetch_retry", kernelId, err: got.message, retryInMs: delay }, "kernel fetch failed; retrying");
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  /**
   * Graceful stop: tell the scheduler we are draining (no new work), let running and queued
   * tasks finish for up to `graceMs`, report them, then close. Past the grace, workers are stopped
   * and the scheduler re-places what was left when the session ends.
   */
  async stop(graceMs = this.config.drainGraceMs): Promise<void> {
    if (this.stopped) return;
    clearTimeout(this.renewTimer);
    this.draining = true;
    this.sendHeartbeat();
    const drained = await Promise.race([
      Promise.all([this.pool.idle(), this.gpu.idle()]).then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), graceMs).unref()),
    ]);
    this.stopped = true;
    this.log.info({ event: "drained", clean: drained, unfinished: this.running.size }, drained ? "drained" : "drain grace expired");
    // The last updates go out before the Kafka link (which sends what it holds) and the stream close.
    clearTimeout(this.runningNotesTimer);
    this.sendRunningNotes();
    this.updates.flush();
    await this.link?.close();
    if (this.session) {
      const closed = new Promise<void>((r) => (this.sessionEnded = r));
      this.session.end();
      await Promise.race([closed, new Promise((r) => setTimeout(r, 1000).unref())]);
    }
    clearInterval(this.heartbeatTimer);
    await this.pool.close();
    await this.gpu.close();
    for (const c of this.clients) c.close();
    this.metrics.stop();
    await this.admin?.stop();
  }

  /** The admin HTTP server (/metrics, /healthz, /readyz), when adminPort is set. */
  private async startAdmin(): Promise<void> {
    this.metrics.startGpuSampling();
    if (this.config.adminPort === undefined) return;
    this.admin = new AdminServer({
      host: this.config.adminHost,
      port: this.config.adminPort,
      registry: this.metrics.registry,
      log: this.log,
      notReady: () =>
        this.stopped ? "stopped" : this.draining ? "draining" : !this.session ? "not connected to the scheduler" : undefined,
    });
    await this.admin.start();
  }

  get adminAddress(): string {
    return this.admin?.address ?? "";
  }
}

/**
 * A task that started and finished within one turn needs no RUNNING on the wire: its final
 * update says more (the scheduler treats a final update as the start too). For tiny tasks this
 * halves what travels back.
 */
export function dropSupersededRunning(items: TaskUpdateIn[]): TaskUpdateIn[] {
  // Most batches hold no RUNNING at all (notes wait RUNNING_NOTE_DELAY_MS): then there is nothing to drop.
  if (items.length < 2 || !items.some((u) => u.state === "TASK_STATE_RUNNING")) return items;
  const finals = new Set<string>();
  for (const u of items) if (u.state !== "TASK_STATE_RUNNING") finals.add(`${u.jobId}/${u.taskIndex}/${u.attempt}`);
  if (finals.size === 0) return items;
  return items.filter((u) => u.state !== "TASK_STATE_RUNNING" || !finals.has(`${u.jobId}/${u.taskIndex}/${u.attempt}`));
}

class AgentStoppedError extends Error {
  constructor() {
    super("agent stopped");
  }
}

const backendOf = (a: Assignment) => (a.kind === "KERNEL_KIND_GPU" ? "gpu" : "wasm");
