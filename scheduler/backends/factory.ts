// Opens the backends a scheduler config asks for. One attempt gives up within
// backendConnectTimeoutMs, with a message that names the address and the setting;
// openBackendsPatiently retries what a retry can fix (a backend down or refusing writes).
import { Backoff } from "../../common/backoff.js";
import { kafkaSecurity } from "../../common/backend-security.js";
import type { SchedulerConfig } from "../../common/config.js";
import type { Logger } from "../../common/logger.js";
import type { TaskBus } from "./bus.js";
import { KafkaBus } from "./kafka-bus.js";
import { MemoryStateStore } from "./memory.js";
import type { Lease } from "./lease.js";
import { RedisLease } from "./redis-lease.js";
import { RedisStateStore } from "./redis-state.js";
import type { StateStore } from "./types.js";

export interface OpenedBackends {
  store: StateStore;
  bus?: KafkaBus;
  lease?: Lease;
}

export async function openBackends(config: SchedulerConfig, log: Logger): Promise<OpenedBackends> {
  let store: StateStore = new MemoryStateStore(undefined, undefined, config.blobStoreBytes);
  if (config.state === "redis") {
    let redis: RedisStateStore;
    try {
      redis = await RedisStateStore.connect({
        url: config.redisUrl,
        prefix: config.redisPrefix,
        resultTtlS: config.resultTtlS,
        resultCacheTtlS: config.resultCacheTtlS,
        connectTimeoutMs: config.backendConnectTimeoutMs,
        caFile: config.redisCaFile,
      });
    } catch (err) {
      throw new Error(`redisUrl: ${(err as Error).message}`);
    }
    redis.redis.on("error", (err: Error) => log.warn({ event: "redis_error", err: err.message }, "Redis connection problem; retrying"));
    store = redis;
  }
  let bus: KafkaBus | undefined;
  if (config.bus === "kafka") {
    let security: ReturnType<typeof kafkaSecurity>;
    try {
      security = kafkaSecurity(config); // its errors name their own setting
    } catch (err) {
      await store.close();
      throw err;
    }
    try {
      bus = await KafkaBus.connect({
        brokers: config.kafkaBrokers.split(","),
        ...(config.kafkaAgentBrokers ? { agentBrokers: config.kafkaAgentBrokers.split(",") } : {}),
        topicPrefix: config.kafkaTopicPrefix,
        partitions: config.kafkaPartitions,
        assignmentPartitions: config.kafkaAssignmentPartitions,
        replicationFactor: config.kafkaReplicationFactor,
        onWarning: (message, details) => log.warn({ event: "kafka_warning", ...details }, message),
        connectTimeoutMs: config.backendConnectTimeoutMs,
        security,
        sealAssignments: !config.insecure,
        onError: (err, where) => log.warn({ event: "kafka_error", where, err: err.message }, "Kafka problem; retrying"),
      });
    } catch (err) {
      await store.close();
      throw new Error(`kafkaBrokers: ${(err as Error).message}`);
    }
  }
  let lease: Lease | undefined;
  // Last, once nothing else can fail: its own connection would leak if a later step threw.
  if (store.shared) {
    const connection = store.shared.redis.duplicate();
    // Its errors are the store connection's too (logged there); without a listener ioredis prints each one.
    connection.on("error", () => undefined);
    lease = new RedisLease(connection, `${config.redisPrefix}:leader`, config.leaseTtlMs, undefined, true);
  }
  return { store, ...(bus ? { bus } : {}), ...(lease ? { lease } : {}) };
}

/**
 * Start-up failures no retry fixes: credentials, ACLs, TLS trust, a bad setting. Anything else
 * (refused or timed-out connections, a broker without a leader yet, Redis loading or out of
 * memory) is an outage to wait out.
 */
export function isPermanentStartupError(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  return /authenticat|SASL|WRONGPASS|NOAUTH|NOPERM|AUTHORIZATION_FAILED|not authorized|certificate|self[- ]signed|unable to verify|CERT_|SSL routines|wrong version number|kafkaSecurity|must be /i.test(message);
}

/**
 * openBackends, retried with capped backoff (1 s up to 30 s) while the failure is one a retry
 * can fix, for up to backendStartWaitMs (0 = for ever): a scheduler restarted during a Kafka or
 * Redis outage waits for it, as a supervised standby must, instead of exiting and crash-looping.
 */
export async function openBackendsPatiently(config: SchedulerConfig, log: Logger, signal?: AbortSignal): Promise<OpenedBackends> {
  const backoff = new Backoff(1000, 30_000);
  const started = Date.now();
  for (;;) {
    try {
      const opened = await openBackends(config, log);
      if (backoff.attempts > 0) log.info({ event: "backends_reachable", attempts: backoff.attempts + 1, waitedMs: Date.now() - started }, "Kafka/Redis reachable; starting");
      return opened;
    } catch (err) {
      const waited = Date.now() - started;
      if (isPermanentStartupError(err) || signal?.aborted) throw err;
      if (config.backendStartWaitMs > 0 && waited >= config.backendStartWaitMs) {
        throw new Error(`${(err as Error).message} (still failing after ${Math.round(waited / 1000)} s; backendStartWaitMs=${config.backendStartWaitMs})`);
      }
      const delay = backoff.next();
      log.warn({ event: "backend_unavailable", attempt: backoff.attempts, retryInMs: delay, err: (err as Error).message }, "a backend is unavailable at start; retrying");
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

export type { TaskBus };
