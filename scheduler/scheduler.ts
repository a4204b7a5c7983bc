// Assembles the scheduler process: backends, registry, core, and the gRPC server with
// reflection and the standard health service.
import * as grpc from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import * as protoLoader from "@grpc/proto-loader";
import { HealthImplementation, protoPath as healthProtoPath } from "grpc-health-check";
import type { SchedulerConfig } from "../common/config.js";
import type { Logger } from "../common/logger.js";
import type { NodeLoad } from "../common/types.js";
import { CHANNEL_OPTIONS, loadContract, v1, listenWithWideWindows } from "../common/proto.js";
import { MemoryStateStore, MemoryTaskQueue } from "./backends/memory.js";
import type { StateStore, TaskQueue } from "./backends/types.js";
import type { TaskBus } from "./backends/bus.js";
import { fenceWrites } from "./backends/fenced-store.js";
import type { Lease } from "./backends/lease.js";
import { SchedulerLifecycle } from "./lifecycle.js";
import { SchedulerCore } from "./core.js";
import { NodeRegistry } from "./registry.js";
import { alertHandlers } from "./alerts/grpc.js";
import { SchedulerMonitoring } from "./monitoring.js";
import { agentHandlers, withDirectAssignments } from "./services/agent-service.js";
import { clientHandlers } from "./services/client-service.js";
import { adminSecurityHandlers, joinHandlers } from "./services/security-service.js";
import { ClusterSecurity } from "./auth/security.js";
import { ensureAdminToken } from "./auth/bootstrap.js";
import { toServiceError } from "../common/errors.js";
import { precheckSubmitBytes, precheckSubmitChunkBytes } from "./submit-precheck.js";
import { rejectMalformedRequests } from "./services/malformed-requests.js";
import { distributeXAuthorizer, guardService, requireNode } from "./auth/policy.js";
import { TenantQuotas } from "./auth/quotas.js";
import { openTokenStore } from "./auth/token-stores.js";
import type { TokenStore } from "./auth/tokens.js";
import { isLoopbackHost } from "./auth/dashboard-auth.js";
import { PreAuthGate } from "./auth/pre-auth.js";
import { InboundBudget } from "./services/inbound-budget.js";

export const SERVICE_NAMES = ["distributex.v1.DistributeX", "distributex.v1.AgentService"] as const;

export class Scheduler {
  readonly registry: NodeRegistry;
  readonly core: SchedulerCore;
  /** Metrics, alerts, admin HTTP and dashboard; the forecaster reports through it. */
  readonly monitoring: SchedulerMonitoring;
  private readonly server: grpc.Server;
  /** Refuses calls without valid credentials before their bodies are read (auth/pre-auth.ts). */
  private readonly preAuth = new PreAuthGate();
  private readonly health: HealthImplementation;
  private readonly bus: TaskBus | undefined;
  private readonly lease: Lease | undefined;
  private nodeCacheTimer?: NodeJS.Timeout;
  /** TLS, tokens and node identities; set by start(). */
  security?: ClusterSecurity;
  readonly quotas: TenantQuotas;
  /** A token store given by the embedder (tests); otherwise opened at start() beside the state. */
  private readonly tokens: TokenStore | undefined;
  address = "";
  /** The one lifecycle state (scheduler/lifecycle.ts): logged on each change, answered on /readyz. */
  readonly lifecycle: SchedulerLifecycle;

  constructor(
    private readonly config: SchedulerConfig,
    private readonly log: Logger,
    backends: { store?: StateStore; queue?: TaskQueue; bus?: TaskBus; lease?: Lease; tokens?: TokenStore; onLeaseLost?: (holder: string | null) => void } = {},
  ) {
    this.bus = backends.bus;
    this.lease = backends.lease;
    this.tokens = backends.tokens;
    if (backends.onLeaseLost) this.lease?.on("lost", backends.onLeaseLost);
    this.registry = new NodeRegistry({ agentTimeoutMs: config.agentTimeoutMs, prefetchPerWorker: config.prefetchPerWorker, pipelineWindowMs: config.pipelineWindowMs });
    const store = backends.store ?? new MemoryStateStore(undefined, undefined, config.blobStoreBytes);
    // With a lease, nothing is written unless Redis confirmed it within its ttl (fenced-store.ts).
    this.core = new SchedulerCore(config, this.registry, backends.lease ? fenceWrites(store, backends.lease) : store, backends.queue ?? new MemoryTaskQueue(), log);
    this.monitoring = new SchedulerMonitoring(config, this.core, this.registry, log);
    this.lifecycle = new SchedulerLifecycle(log);
    this.core.acceptsJobs = () => this.lifecycle.acceptsJobs;
    this.monitoring.notReady = () => this.lifecycle.notReady();
    this.core.resultCache = config.resultCacheTtlS > 0;
    this.server = new grpc.Server({ ...CHANNEL_OPTIONS, interceptors: [new InboundBudget(config.maxInboundBytes, config.outputStallMs).interceptor, this.preAuth.interceptor] });
    // The two contract services are added at start(), once the security setup (async) is open.
    this.quotas = new TenantQuotas(config, this.core, log);
    // Reflection describes our contract and the standard health service, so tools see both.
    const healthDefinition = protoLoader.loadSync(healthProtoPath);
    new ReflectionService({ ...loadContract().definition, ...healthDefinition }).addToServer(this.server);
    this.health = new HealthImplementation({ "": "SERVING", ...Object.fromEntries(SERVICE_NAMES.map((s) => [s, "SERVING"])) });
    this.health.addToServer(this.server);
  }

  async start(): Promise<string> {
    if (this.lease) {
      // A standby neither listens nor consumes until it holds the lease.
      let lastWarnAt = 0;
      await this.lease.acquire(
        (holder) => {
          this.lifecycle.to("standby", { holder });
          this.log.info({ event: "standby", holder }, "another scheduler is active; standing by");
        },
        undefined,
        (err) => {
          this.lifecycle.to("waiting-for-backends", { err: err.message });
          // At most one line per 10 s: the wait polls several times a second.
          if (Date.now() - lastWarnAt < 10_000) return;
          lastWarnAt = Date.now();
          this.log.warn({ event: "lease_unavailable", err: err.message }, "Redis cannot grant the scheduler lease (unreachable or refusing writes); waiting");
        },
      );
      this.log.info({ event: "leader", owner: this.lease.owner }, "holding the scheduler lease");
    }
    this.lifecycle.to("restoring");
    const tokens = this.tokens ?? (await openTokenStore(this.config, this.core.store));
    const security = await ClusterSecurity.open(
      { ...this.config, certHosts: [this.config.certHosts, /^(0\.0\.0\.0|::)$/.test(this.config.host) ? "" : this.config.host].filter(Boolean).join(",") },
      this.log,
      tokens,
      this.core.store.shared?.redis,
    );
    this.security = security;
    if (!security.insecure) await ensureAdminToken(tokens, this.config.dataDir, this.log);
    this.addContractServices(security);
    const restored = await this.core.restore();
    await this.core.restoreFinished();
    this.abandonIfStopping();
    if (restored > 0) this.log.info({ event: "restored", jobs: restored }, `resumed ${restored} unfinished job(s)`);
    if (this.bus) {
      const bus = this.bus;
      this.core.journal = (rec) => bus.appendSubmission(rec);
      const verifier = security.recordVerifier;
      const warned = new Map<string, number>();
      await bus.consume(
        {
          submission: (rec) => this.core.adopt(rec), holds: (jobId) => this.core.peekJob(jobId) !== undefined,
          rejected: (topic, reason) => this.core.emit("record_rejected", topic, reason),
          ...(verifier && {
            verify: (topic, key, value, headers) => verifier.verify(topic, key, value, headers),
            eventRejected: (reason, claimedNodeId) => {
              this.core.emit("update_rejected", reason, claimedNodeId);
              // Counted every time; logged at most every 10 s per reason (a flood of forgeries must not flood the log).
              const now = Date.now();
              if (now - (warned.get(reason) ?? 0) < 10_000) return;
              warned.set(reason, now);
              this.log.warn({ event: "kafka_record_refused", reason, claimedNodeId }, "refused a task-event record from Kafka: its node signature is missing or does not prove the node it claims");
            },
          }),
          event: (rec) => this.core.onTaskUpdate(rec.nodeId, rec.update),
          load: (sample) => this.registry.setLoad(sample.nodeId, sample.load as NodeLoad),
        },
        // With a lease there is a predecessor to take over from (see ConsumerGroupHandoff).
        this.lease ? this.core.store.shared?.consumerGroupHandoff() : undefined,
      );
    }
    this.abandonIfStopping();
    const store = this.core.store.shared;
    if (store) {
      const ttl = this.config.agentTimeoutMs * 3;
      this.nodeCacheTimer = setInterval(() => {
        for (const n of this.registry.all()) void store.putNode(n.id, JSON.stringify(this.registry.toProto(n)), ttl).catch(() => undefined);
      }, Math.max(500, this.config.heartbeatIntervalMs));
      this.nodeCacheTimer.unref();
    }
    const port = await listenWithWideWindows(this.server, `${this.config.host}:${this.config.port}`, security.serverCredentials()).catch((err: Error) => {
      throw new Error(`cannot listen on ${this.config.host}:${this.config.port}: ${err.message}`);
    });
    this.abandonIfStopping();
    this.registry.start();
    this.quotas.start();
    this.monitoring.useAuth(security.insecure ? undefined : security.tokens, !isLoopbackHost(this.config.adminHost));
    await this.monitoring.start();
    const host = this.config.host.includes(":") ? `[${this.config.host}]` : this.config.host;
    this.address = `${host}:${port}`;
    this.log.info(
      { event: "listening", address: this.address, bus: this.config.bus, state: this.config.state, placement: this.core.placement.strategy.name, tls: !security.insecure, caHash: security.caHash },
      `scheduler listening on ${this.address}${security.insecure ? " (INSECURE)" : " (TLS 1.3)"}`,
    );
    security.startInsecureWarning();
    this.lifecycle.to("active", { address: this.address });
    return this.address;
  }

  /**
   * stop() or stepDown() may begin while start() is still loading (the lease lost during a long
   * restore): start() must then not go on to consume, listen or start timers for a scheduler that
   * no longer leads. Its promise rejects; the caller has already moved on.
   */
  private abandonIfStopping(): void {
    const state = this.lifecycle.state;
    if (state === "stopping" || state === "stopped") throw new Error(`scheduler start abandoned: it is ${state}`);
  }

  /** DistributeX and AgentService, each behind authentication (scheduler/auth/guard.ts). */
  private addContractServices(security: ClusterSecurity): void {
    const V1 = v1();
    const bus = this.bus;
    const routing = bus?.agentRouting;
    const ctx = security.context;
    const client = {
      ...clientHandlers(this.core, alertHandlers(this.monitoring.alerts), { auth: ctx, quotas: this.quotas, limits: this.config, outputStallMs: this.config.outputStallMs }),
      ...adminSecurityHandlers(security, this.core),
    };
    const submitLimits = { SubmitJob: (bytes: Buffer) => precheckSubmitBytes(bytes, this.config), RunJob: (bytes: Buffer) => precheckSubmitBytes(bytes, this.config), SubmitJobStream: (bytes: Buffer) => precheckSubmitChunkBytes(bytes, this.config) };
    this.server.addService(
      ...rejectMalformedRequests(V1.DistributeX.service, guardService(V1.DistributeX.service, client, ctx, { authorize: distributeXAuthorizer(V1.DistributeX.service) }), submitLimits),
    );
    this.preAuth.guard(ctx, V1.DistributeX.service, distributeXAuthorizer(V1.DistributeX.service));
    const agent = {
      ...agentHandlers(
        this.core,
        this.config.heartbeatIntervalMs,
        this.log,
        bus && routing && {
          route: (nodeId) => routing.routeFor(nodeId),
          sendAssignments: (nodeId, items, sealTo) => bus.publishAssignments(nodeId, items, sealTo),
          sendCancel: (nodeId, cancel, sealTo) => bus.publishCancel(nodeId, cancel, sealTo),
        },
        security, this.config,
      ),
      ...joinHandlers(security, (nodeId, key) => this.registry.setSealKey(nodeId, key)),
    };
    const open = new Set(["Join", "RenewCertificate"]);
    this.server.addService(...rejectMalformedRequests(withDirectAssignments(V1.AgentService.service), guardService(V1.AgentService.service, agent, ctx, { open, authorize: requireNode })));
    this.preAuth.guard(ctx, V1.AgentService.service, requireNode, open);
  }

  private stopping?: Promise<void>;

  /**
   * Graceful stop: refuse new jobs, let running jobs finish for up to graceMs, then close.
   * Memoised (a second call gets the first call's promise), and step by step: a step that fails
   * is logged and the rest still run, so a broken Kafka or Redis connection never keeps the
   * lease held (a standby would wait for its TTL) or the store open.
   */
  stop(graceMs = this.config.drainGraceMs): Promise<void> {
    this.stopping ??= this.runStopSteps(graceMs, false);
    return this.stopping;
  }

  /**
   * After the lease went to another scheduler: stop acting at once (no more store writes, no
   * more dispatch, clients and agents cut off so they fail over to the new leader), then close
   * the rest. Nothing drains: the new leader owns the jobs now. The caller may then start a
   * fresh Scheduler, which stands by on the lease.
   */
  stepDown(): Promise<void> {
    this.stopping ??= this.runStopSteps(0, true);
    return this.stopping;
  }

  private async runStopSteps(graceMs: number, leaseLost: boolean): Promise<void> {
    const failed: string[] = [];
    const step = async (name: string, fn: () => unknown): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        failed.push(name);
        this.log.error({ event: "stop_step_failed", step: name, err: (err as Error).message }, `stopping: ${name} failed; going on with the rest`);
      }
    };
    // A step-down skips the drain (the new leader owns the jobs); a stop drains first.
    if (!leaseLost) this.lifecycle.to("draining");
    else this.lifecycle.to("stopping", { reason: "lease lost" });
    if (leaseLost) {
      await step("fence", () => {
        this.core.close();
        this.registry.stop();
        this.server.forceShutdown();
      });
    }
    await step("health", () => {
      for (const s of ["", ...SERVICE_NAMES]) this.health.setStatus(s, "NOT_SERVING");
    });
    await step("drain", async () => {
      const clean = await this.core.drain(graceMs);
      this.log.info({ event: "drained", clean, activeJobs: this.core.activeJobs() }, clean ? "all jobs finished" : "drain grace expired");
    });
    this.lifecycle.to("stopping");
    await step("registry", () => this.registry.stop());
    await step("grpc server", () => this.shutdownServer());
    await step("monitoring", () => this.monitoring.stop());
    await step("node cache", () => clearInterval(this.nodeCacheTimer));
    await step("store retries", () => this.core.close());
    await step("kafka", () => this.bus?.close());
    await step("lease", () => this.lease?.release());
    await step("store", () => this.core.store.close());
    await step("security", () => this.security?.stop());
    await step("quotas", () => this.quotas.stop());
    if (failed.length > 0) this.log.warn({ event: "stopped_with_errors", failed }, `stopped; ${failed.length} step(s) failed`);
    this.lifecycle.to("stopped", failed.length > 0 ? { failed } : undefined);
  }

  private shutdownServer(): Promise<void> {
    return new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 2000);
      force.unref();
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}
