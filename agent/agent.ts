// The agent: profiles its host, calibrates, registers with the scheduler and then holds one
// session over which it receives assignments and cancellations and sends heartbeats and task
// updates. This class composes the parts and owns the agent's one lifecycle state:
//   startup.ts        profiling and calibration, once at start
//   scheduler-link.ts certificate, Register, session, failover between schedulers, Kafka link
//   task-runner.ts    task policy, running in the worker pool or on the GPU, cancels
//   update-outbox.ts  batching of task updates (and the short wait of RUNNING notes)
//   lifecycle.ts      starting → connecting → ready → draining → stopping → stopped
import type { AgentConfig } from "../common/config.js";
import type { Logger } from "../common/logger.js";
import type { HardwareProfileIn } from "../common/types.js";
import { AdminServer } from "../common/admin-http.js";
import { kafkaSecurity } from "../common/backend-security.js";
import type { CalibrationResult } from "./calibrate.js";
import type { GpuSupport } from "./gpu/gpu-support.js";
import type { NodeIdentity } from "./identity.js";
import { AgentLifecycle, type AgentState } from "./lifecycle.js";
import { CpuSampler, memoryUsedBytes } from "./load-sampler.js";
import { HostShare, hostLoadOf } from "./host-share.js";
import { AgentMetrics } from "./metrics.js";
import { AGENT_VERSION, SchedulerLink } from "./scheduler-link.js";
import { describeProfile, profileHost } from "./startup.js";
import { TaskRunner } from "./task-runner.js";
import { UpdateOutbox } from "./update-outbox.js";
import { useOptimizingWasmTier } from "./wasm/tier.js";

export { AGENT_VERSION } from "./scheduler-link.js";
export { dropSupersededRunning, RUNNING_NOTE_DELAY_MS } from "./update-outbox.js";
export type { AgentState } from "./lifecycle.js";

export class Agent {
  private readonly lifecycle: AgentLifecycle;
  private readonly link: SchedulerLink;
  private readonly outbox: UpdateOutbox;
  private readonly runner: TaskRunner;
  private readonly cpu = new CpuSampler();
  private readonly share: HostShare;
  private fatalListener?: (err: Error) => void;
  private admin?: AdminServer;
  /** The one stop in progress or done: stop() is memoised. */
  private stopping?: Promise<void>;
  readonly metrics: AgentMetrics;
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
    this.lifecycle = new AgentLifecycle(log);
    this.share = new HostShare(config);
    this.metrics = new AgentMetrics(() => this.runner.pool.getStats(), AGENT_VERSION);
    this.link = new SchedulerLink(config, log, this.metrics, {
      assign: (a) => void this.runner.run(a),
      cancel: (c) => this.runner.cancel(c),
      heartbeat: () => this.sendHeartbeat(),
      connected: () => this.lifecycle.to("ready", { nodeId: this.link.nodeId }),
      sessionLost: (reason, updatesDeliverable) => {
        if (!updatesDeliverable) this.outbox.clear();
        this.runner.abandonAll("scheduler session lost");
        this.lifecycle.to("connecting", { reason });
      },
      refused: (err) => this.fatalListener?.(err),
      delivered: (updates) => this.outbox.delivered(updates),
      replaced: (updates, instead) => this.outbox.replaced(updates, instead),
      written: (updates) => this.outbox.released(updates),
    });
    this.outbox = new UpdateOutbox((items) => this.link.sendUpdates(items));
    this.runner = new TaskRunner(config, log, this.metrics, this.outbox, (id) => this.link.fetchKernel(id), (ref, into, use) => this.link.fetchBlob(ref, into, use), {
      byRefBytes: () => this.link.outputByRefBytes,
      upload: (task, data) => this.link.uploadOutput(task, data),
    });
    this.runner.pool.on("restart", () => {
      this.metrics.workerRestarted();
      this.log.warn({ event: "worker_restarted" }, "kernel worker replaced");
    });
  }

  get state(): AgentState {
    return this.lifecycle.state;
  }

  get nodeId(): string {
    return this.link.nodeId;
  }

  /** The node certificate (absent with --insecure). */
  get identity(): NodeIdentity | undefined {
    return this.link.identity;
  }

  get gpu(): GpuSupport {
    return this.runner.gpu;
  }

  get workers(): number {
    return this.runner.pool.size;
  }

  get adminAddress(): string {
    return this.admin?.address ?? "";
  }

  /** Profiles, calibrates, registers and opens the session. Resolves once the session is open. */
  async start(): Promise<void> {
    await this.startAdmin();
    const host = await profileHost(this.config, this.runner.pool, this.runner.gpu);
    this.profile = host.profile;
    this.calibration = host.calibration;
    await this.link.setUpIdentity();
    this.log.info(describeProfile(host, this.runner.pool.size), "host profiled");
    this.lifecycle.to("connecting");
    await this.link.connect(host.profile, true);
  }

  /** Called when the scheduler refuses this agent for good (an incompatible version): it will not retry. */
  onFatal(listener: (err: Error) => void): void {
    this.fatalListener = listener;
  }

  private sendHeartbeat(): void {
    const cpu = this.cpu.sampleWithOwn();
    const wasBackingOff = this.share.backingOff;
    const share = this.share.observe(hostLoadOf(cpu), Date.now());
    if (this.share.backingOff !== wasBackingOff) {
      if (share.backingOff) this.log.warn({ event: "backing_off", hostLoad: share.hostLoad, maxHostLoad: this.config.maxHostLoad }, `backing off: ${share.backingOff}`);
      else this.log.info({ event: "backing_off_ended", hostLoad: share.hostLoad, maxHostLoad: this.config.maxHostLoad }, "the host's own load went down; taking work again");
    }
    this.metrics.setHostShare(share.hostLoad, this.share.backingOff);
    const load = {
      ...cpu,
      memoryUsedBytes: String(memoryUsedBytes()),
      ...this.runner.load(),
      gpuUtilization: this.runner.gpu.utilization,
      sampledAtMs: Date.now(),
    };
    this.outbox.flush(); // a heartbeat never overtakes the updates before it
    this.link.sendHeartbeat(this.lifecycle.draining, load, share);
  }

  /**
   * Graceful stop: tell the scheduler we are draining (no new work), let running and queued
   * tasks finish for up to `graceMs`, report them, then close. Past the grace, workers are stopped
   * and the scheduler re-places what was left when the session ends. Called again, it returns
   * the same stop.
   */
  stop(graceMs = this.config.drainGraceMs): Promise<void> {
    this.stopping ??= this.stopInSteps(graceMs);
    return this.stopping;
  }

  /** Each step runs even when one before it failed; the first failure is thrown at the end. */
  private async stopInSteps(graceMs: number): Promise<void> {
    const failures: Error[] = [];
    const step = async (name: string, run: () => unknown): Promise<void> => {
      try {
        await run();
      } catch (err) {
        failures.push(err as Error);
        this.log.error({ event: "stop_step_failed", step: name, err: (err as Error).message }, `agent stop: ${name} failed`);
      }
    };
    this.lifecycle.to("draining");
    await step("stop certificate renewal", () => this.link.stopRenewal());
    await step("announce draining", () => this.sendHeartbeat());
    let drained = false;
    await step("drain", async () => {
      drained = await Promise.race([
        this.runner.idle().then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), graceMs).unref()),
      ]);
    });
    this.link.beginClosing();
    this.lifecycle.to("stopping");
    this.log.info({ event: "drained", clean: drained, unfinished: this.runner.held }, drained ? "drained" : "drain grace expired");
    // The last updates go out before the Kafka link (which sends what it holds) and the stream close.
    await step("send last updates", () => this.outbox.flushAll());
    await step("close the Kafka link", () => this.link.closeKafka());
    await step("end the session", () => this.link.endSession());
    await step("stop the workers", () => this.runner.closePool());
    await step("stop the GPU executors", () => this.runner.closeGpu());
    await step("close the scheduler clients", () => this.link.closeClients());
    await step("stop metrics", () => this.metrics.stop());
    await step("stop the admin server", () => this.admin?.stop());
    this.lifecycle.to("stopped");
    if (failures.length > 0) throw failures[0];
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
      notReady: () => this.lifecycle.notReady(),
    });
    await this.admin.start();
  }
}
