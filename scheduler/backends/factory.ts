// Opens the backends a scheduler config asks for. A bad broker or Redis address fails here
// within backendConnectTimeoutMs, with a message that names the address and the setting.
import { kafkaSecurity } from "../../common/backend-security.js";
import type { SchedulerConfig } from "../../common/config.js";
import type { Logger } from "../../common/logger.js";
import type { TaskBus } from "./bus.js";
import { KafkaBus } from "./kafka-bus.js";
import { MemoryStateStore } from "./memory.js";
import { RedisLease } from "./redis-lease.js";
import { RedisStateStore } from "./redis-state.js";
import type { StateStore } from "./types.js";

export interface OpenedBackends {
  store: StateStore;
  bus?: KafkaBus;
  lease?: RedisLease;
}

export async function openBackends(config: SchedulerConfig, log: Logger): Promise<OpenedBackends> {
  let store: StateStore = new MemoryStateStore();
  let lease: RedisLease | undefined;
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
    lease = new RedisLease(redis.redis.duplicate(), `${config.redisPrefix}:leader`, config.leaseTtlMs);
  }
  let bus: KafkaBus | undefined;
  if (config.queue === "kafka") {
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
        onError: (err, where) => log.warn({ event: "kafka_error", where, err: err.message }, "Kafka problem; retrying"),
      });
    } catch (err) {
      await store.close();
      throw new Error(`kafkaBrokers: ${(err as Error).message}`);
    }
  }
  return { store, ...(bus ? { bus } : {}), ...(lease ? { lease } : {}) };
}

export type { TaskBus };
