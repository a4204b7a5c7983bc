// The agent's link to its scheduler: the node certificate (renewal: cert-renewal.ts), gRPC clients
// with failover, Register, the session (assignments in; heartbeats and, without Kafka, updates out),
// the Kafka link, kernel and blob fetches. It knows nothing of tasks: it only carries them.
import * as grpc from "@grpc/grpc-js";
import { fetchBlobRetrying, fetchKernelRetrying, type FetchContext } from "./fetch-retry.js";
import { uploadOutputRetrying, type OutputRef } from "./output-upload.js";
import type { AgentConfig } from "../common/config.js";
import type { Logger } from "../common/logger.js";
import { AGENT_CHANNEL_OPTIONS, v1 } from "../common/proto.js";
import type { AgentMessageIn, AgentServiceGrpcClient, Assignment, Cancellation, HardwareProfileIn, NodeLoadIn, SchedulerMessage, TaskUpdateIn } from "../common/types.js";
import { kafkaSecurity } from "../common/backend-security.js";
import { Backoff } from "../common/backoff.js";
import { SESSION_MESSAGE_BUDGET_BYTES, splitByBytes } from "../common/split-by-bytes.js";
import { checkBrokers, updateBytes } from "../common/kafka-wire.js";
import type { SecureChannel } from "../common/secure-channel.js";
import { CertRenewal } from "./cert-renewal.js";
import { identityDir, join, loadIdentity, mtlsChannel, type NodeIdentity } from "./identity.js";
import { DroppedRecordError, KafkaAgentLink, type KafkaRouteShape } from "../common/kafka-agent-link.js";
import { recordSigner } from "../common/record-signature.js";
import { NodeKeyRing } from "../common/record-seal.js";
import type { AgentMetrics } from "./metrics.js";
import { packageVersion } from "../common/version.js";
import { AgentRefusedError, AgentStoppedError, type LinkHandlers } from "./link-handlers.js";

/** This agent's release (the package's version), announced at Register and in the session hello. */
export const AGENT_VERSION = packageVersion();

/** How long a session moved to a renewed certificate waits for the scheduler's word before ending the old one. */
const MOVE_ACK_WAIT_MS = 5000;

type Session = grpc.ClientDuplexStream<AgentMessageIn, SchedulerMessage>;

/** After this many reconnect attempts in a row, a retry is logged at most once per RETRY_LOG_EVERY_MS. */
const RETRIES_LOGGED_IN_FULL = 5;
const RETRY_LOG_EVERY_MS = 30_000;

export class SchedulerLink {
  /** One client per configured scheduler (active + standbys); `current` is the one in use. */
  private clients: AgentServiceGrpcClient[];
  private current = 0;
  /** The node certificate (absent with --insecure) and the timer that renews it. */
  identity?: NodeIdentity;
  private readonly renewal: CertRenewal;
  /** Opens this node's sealed assignments records (secure clusters): the current key, the previous, a renewal's pending one. */
  private readonly keys = new NodeKeyRing(() => this.identity, (reason) => this.metrics.assignmentRecordDropped(reason));
  private kafka?: KafkaAgentLink;
  private session?: Session;
  private heartbeatTimer?: NodeJS.Timeout;
  private sessionEnded?: () => void;
  /**
   * The brokers of a Kafka link given up because they fell silent (kafkaStallMs): the agent
   * registers again only once they answer, so the scheduler never sees it READY while it still
   * cannot read its assignments.
   */
  private brokersLost?: string[];
  /** Set once the agent stops: no reconnect, no renewal, no fetch retries from then on. */
  private closing = false;
  nodeId = "";
  /** Outputs of at least this many bytes go by reference (Register's answer; 0 = inline). */
  outputByRefBytes = 0;

  constructor(
    private readonly config: AgentConfig,
    private readonly log: Logger,
    private readonly metrics: AgentMetrics,
    private readonly handlers: LinkHandlers,
  ) {
    this.renewal = new CertRenewal(config, log, {
      client: () => this.client,
      renewed: (next) => this.moveToIdentity(next),
      expect: (keyPem) => this.keys.expect(keyPem), // the scheduler seals to the new key as soon as it issues the certificate
    });
    // Secure clusters: the clients are made in setUpIdentity(), once the node certificate is at hand.
    this.clients = config.insecure ? this.makeClients(() => ({ credentials: grpc.credentials.createInsecure(), options: {} })) : [];
  }

  get connected(): boolean {
    return this.session !== undefined;
  }

  private makeClients(channelTo: (address: string) => SecureChannel): AgentServiceGrpcClient[] {
    const V1 = v1();
    return this.config.scheduler.split(",").map((addr) => {
      const { credentials, options } = channelTo(addr);
      return new V1.AgentService(addr, credentials, { ...AGENT_CHANNEL_OPTIONS, ...options }) as unknown as AgentServiceGrpcClient;
    });
  }

  private useIdentity(identity: NodeIdentity): void {
    this.identity = identity;
    this.clients = this.makeClients((addr) => mtlsChannel(addr, identity));
  }

  /**
   * After a renewal: new channels with the new certificate, and the session moved onto one. The
   * scheduler ends a session when the certificate that opened it expires, so it must not stay on
   * the old connection. No Register: the node keeps its tasks; the old session is half-closed
   * after the new one is opened, so what was written on it is still read, and it keeps
   * delivering what the scheduler sent on it until the scheduler ends it.
   */
  private moveToIdentity(next: NodeIdentity): void {
    const oldClients = this.clients;
    this.useIdentity(next);
    const old = this.session;
    const closeOld = () => setImmediate(() => oldClients.forEach((c) => c.close()));
    if (!old || !this.sessionArgs || this.closing) return void closeOld();
    this.openSession(this.sessionArgs.profile, this.sessionArgs.heartbeatIntervalMs);
    old.on("status", closeOld);
    // The old one ends only once the scheduler has taken the new one (its response headers, sent
    // on the hello): ended first, it would leave the node without a session, and DOWN. Bounded,
    // for a scheduler that does not send them; the old certificate has a third of its life left.
    let endOld: (() => void) | undefined = () => {
      endOld = undefined;
      clearTimeout(fallback);
      old.end();
      this.log.info({ event: "session_moved", nodeId: this.nodeId, notAfter: new Date(next.notAfterMs).toISOString() }, "session moved to a connection with the renewed certificate");
    };
    const fallback = setTimeout(() => endOld?.(), MOVE_ACK_WAIT_MS);
    fallback.unref();
    this.session!.once("metadata", () => endOld?.());
    this.session!.once("status", () => endOld?.());
  }

  private get client(): AgentServiceGrpcClient {
    return this.clients[this.current % this.clients.length]!;
  }

  /** Loads the node certificate, or joins with the join token to get one; then mTLS from here on. */
  async setUpIdentity(): Promise<void> {
    if (this.config.insecure) {
      this.log.warn({ event: "insecure_mode" }, "running with --insecure: no TLS, the scheduler is not verified");
      return;
    }
    const identity = loadIdentity(identityDir(this.config)) ?? (await join(this.config, this.log));
    this.useIdentity(identity);
    if (!this.closing) this.renewal.schedule(identity);
  }

  /**
   * Registers and opens the session. At start-up, connectTimeoutMs bounds the wait (a wrong
   * address fails fast, with a clear error). Once registered, a lost scheduler is waited for
   * for ever: an installed agent must come back by itself when its scheduler does.
   */
  async connect(profile: HardwareProfileIn, initial: boolean): Promise<void> {
    const deadline = initial && this.config.connectTimeoutMs ? Date.now() + this.config.connectTimeoutMs : Infinity;
    // Capped at 2 s: a failover must reach every agent within the agent timeout + 2 s, and a
    // refused connection to a scheduler that is down costs it nothing.
    const backoff = new Backoff(200, initial ? 5000 : 2000);
    let lastLoggedMs = 0;
    let suppressed = 0;
    for (;;) {
      if (this.closing) throw new AgentStoppedError();
      try {
        if (this.brokersLost) {
          await checkBrokers(this.brokersLost, 5000, kafkaSecurity(this.config));
          this.log.info({ event: "kafka_reachable", brokers: this.brokersLost.join(",") }, "the Kafka broker answers again; registering");
          this.brokersLost = undefined;
        }
        const reply = await new Promise<{ nodeId: string; heartbeatIntervalMs: number; kafka?: KafkaRouteShape | null; outputByRefBytes?: string }>((resolve, reject) =>
          this.client.Register(
            { profile, agentVersion: AGENT_VERSION, reservedCores: this.config.reserveCores },
            { deadline: Date.now() + 5000 },
            (err, res) => (err || !res ? reject(err ?? new Error("empty reply")) : resolve(res)),
          ),
        );
        this.nodeId = reply.nodeId;
        this.outputByRefBytes = Number(reply.outputByRefBytes ?? 0);
        this.metrics.setNodeId(reply.nodeId, AGENT_VERSION);
        await this.openKafkaLink(reply.kafka);
        this.openSession(profile, reply.heartbeatIntervalMs || 1000);
        this.metrics.setConnected(true);
        this.log.info({ event: "registered", nodeId: this.nodeId, scheduler: this.config.scheduler, attempts: backoff.attempts + 1 }, "registered with scheduler");
        this.handlers.connected();
        return;
      } catch (err) {
        if (this.closing) throw new AgentStoppedError();
        if ((err as grpc.ServiceError).code === grpc.status.FAILED_PRECONDITION) {
          const refused = new AgentRefusedError(`the scheduler at ${this.config.scheduler} refused this agent: ${(err as grpc.ServiceError).details}`);
          this.log.error({ event: "agent_refused", agentVersion: AGENT_VERSION, err: refused.message }, refused.message);
          throw refused;
        }
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
    const old = this.kafka;
    this.kafka = undefined;
    await old?.close();
    if (!route || route.brokers.length === 0) return;
    const brokers = this.config.kafkaBrokers ? this.config.kafkaBrokers.split(",") : route.brokers;
    this.kafka = await KafkaAgentLink.open(
      { ...route, brokers },
      this.nodeId,
      { assign: (a) => this.handlers.assign(a), cancel: (c) => this.handlers.cancel(c) },
      (err) =>
        err instanceof DroppedRecordError
          ? this.log.warn({ event: "assignment_record_dropped", err: err.message }, "assignments record skipped")
          : this.log.warn({ event: "kafka_error", err: err.message }, "Kafka problem; retrying"),
      undefined,
      kafkaSecurity(this.config),
      { delivered: (u) => this.handlers.delivered(u), replaced: (u, instead) => this.handlers.replaced(u, instead) },
      // The scheduler believes a record's node id only with this node's signature on it; the
      // current identity each time, so records are signed with the renewed key once renewed.
      this.identity && recordSigner(() => this.identity!),
      this.identity && this.keys,
    );
    this.log.info({ event: "kafka_link", topic: route.assignmentsTopic, partition: route.assignmentsPartition }, "reading assignments from Kafka");
  }

  /** What the open session was opened with, to open its successor after a renewal. */
  private sessionArgs?: { profile: HardwareProfileIn; heartbeatIntervalMs: number };

  private openSession(profile: HardwareProfileIn, heartbeatIntervalMs: number): void {
    this.sessionArgs = { profile, heartbeatIntervalMs };
    clearInterval(this.heartbeatTimer);
    const session = this.client.Session();
    this.session = session;
    session.write({ hello: { nodeId: this.nodeId, agentVersion: AGENT_VERSION } });
    session.on("data", (msg: SchedulerMessage) => {
      if (msg.assign) this.handlers.assign(msg.assign);
      else if (msg.assigns) for (const a of msg.assigns.items) this.handlers.assign(a);
      else if (msg.cancel) this.handlers.cancel(msg.cancel);
    });
    const ended = (why: string) => {
      if (this.session !== session) return;
      this.session = undefined;
      clearInterval(this.heartbeatTimer);
      this.metrics.setConnected(false);
      this.sessionEnded?.();
      if (this.closing) return;
      // The scheduler has re-placed whatever we held: drop it and start over with a new session.
      this.log.warn({ event: "session_lost", reason: why }, "lost the scheduler session; reconnecting");
      this.handlers.sessionLost(why, this.kafka !== undefined);
      // Retries for ever; it only ends when the agent stops.
      void this.connect(profile, false).catch((err: Error) => {
        if (err instanceof AgentRefusedError) this.handlers.refused(err);
        else if (!(err instanceof AgentStoppedError)) this.log.error({ event: "reconnect_failed", err: err.message }, "reconnect loop ended unexpectedly");
      });
    };
    session.on("error", (err: grpc.ServiceError) => ended(err.details || err.message));
    session.on("end", () => ended("scheduler closed the session"));
    this.heartbeatTimer = setInterval(() => {
      const silentMs = this.kafka?.brokerSilentForMs() ?? 0;
      if (this.config.kafkaStallMs > 0 && silentMs >= this.config.kafkaStallMs) {
        // The session alone would keep this node READY, holding assignments it cannot read and
        // results it cannot send: give it up, so that the scheduler places them elsewhere.
        this.brokersLost = this.kafka!.brokers;
        this.log.warn(
          { event: "kafka_unreachable", silentMs, kafkaStallMs: this.config.kafkaStallMs, brokers: this.brokersLost.join(",") },
          "no word from the Kafka broker: giving up the session so that the scheduler places this agent's tasks elsewhere; registering again once the broker answers",
        );
        ended(`no word from the Kafka broker for ${silentMs} ms (kafkaStallMs)`);
        session.cancel();
        return;
      }
      this.handlers.heartbeat();
    }, heartbeatIntervalMs);
    this.heartbeatTimer.unref();
    this.handlers.heartbeat();
  }

  /**
   * Task updates go over Kafka when the scheduler uses it, else on the session. Returns whether
   * word of their fate follows (Kafka: delivered or replaced); on the session it does not.
   */
  sendUpdates(items: TaskUpdateIn[]): boolean {
    if (this.kafka) {
      this.kafka.sendUpdates(items);
      return true;
    }
    // In messages of at most SESSION_MESSAGE_BUDGET_BYTES: outputs that end together never add
    // up to one message over the limit (one larger output goes alone).
    // The stream may hold a message a while before it encodes it (behind earlier writes): its
    // bytes are read until the write's callback, which comes after the encoding, failed or not.
    for (const run of splitByBytes(items, updateBytes, SESSION_MESSAGE_BUDGET_BYTES)) {
      if (!this.session) this.handlers.written(run);
      else this.session.write(run.length === 1 ? { update: run[0]! } : { updates: { items: run } }, () => this.handlers.written(run));
    }
    return false;
  }

  sendHeartbeat(draining: boolean, load: NodeLoadIn, share?: { backingOff: string; giveBack: boolean }): void {
    this.session?.write({ heartbeat: { draining, load, backingOff: share?.backingOff ?? "", giveBack: share?.giveBack ?? false } });
    this.kafka?.sendLoad({ nodeId: this.nodeId, draining, load });
  }

  /** A kernel's bytes, transient failures retried for a while (fetch-retry.ts). */
  fetchKernel(kernelId: string): Promise<Uint8Array> {
    return fetchKernelRetrying(this.fetchContext(), kernelId, (name) => this.metrics.noteKernel(kernelId, name));
  }

  /** A blob streamed into `into`, checked, transient failures retried for a while (fetch-retry.ts). */
  fetchBlob(ref: { sha256: string; sizeBytes: number }, into: Uint8Array, use: { jobId: string; taskIndex: number }): Promise<void> {
    return fetchBlobRetrying(this.fetchContext(), ref, into, use);
  }

  /** An output streamed to the scheduler, transient failures retried for a while (output-upload.ts). */
  uploadOutput(task: { jobId: string; taskIndex: number; attempt: number }, data: Uint8Array): Promise<OutputRef> {
    return uploadOutputRetrying(this.fetchContext(), { ...task, nodeId: this.nodeId }, data);
  }

  private fetchContext(): FetchContext {
    return { client: () => this.client, log: this.log, closing: () => this.closing };
  }

  // Stopping, step by step (the agent runs each step even when an earlier one failed).

  /** No certificate renewal from here on. */
  stopRenewal(): void {
    this.renewal.stop();
  }

  /** From here on a lost session is not reconnected and a failed fetch is not retried. */
  beginClosing(): void {
    this.closing = true;
  }

  /**
   * Closes the Kafka link, which first sends what it holds. It stays the route for updates: what
   * comes later (tasks the pool stops) is dropped there rather than written to a closing session.
   */
  async closeKafka(): Promise<void> {
    await this.kafka?.close();
  }

  /** Ends the session and waits up to a second for the scheduler to close it too. */
  async endSession(): Promise<void> {
    if (this.session) {
      const closed = new Promise<void>((r) => (this.sessionEnded = r));
      this.session.end();
      await Promise.race([closed, new Promise((r) => setTimeout(r, 1000).unref())]);
    }
    clearInterval(this.heartbeatTimer);
  }

  closeClients(): void {
    for (const c of this.clients) c.close();
  }
}
