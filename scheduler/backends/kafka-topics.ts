// Topic administration for the Kafka bus: how many replicas the topics get, creating those that
// are missing, and waiting out the metadata errors of a broker that has just started.
import type { Admin } from "kafkajs";

/**
 * The replication of the topics we create, set explicitly: the broker's default is 1 on a
 * default broker, which makes "acks from all in-sync replicas" mean one copy. A majority of the
 * replicas must be in sync for a write to be acknowledged.
 */
export function replicationFor(requested: number | undefined, brokers: number): { replicationFactor: number; minInsyncReplicas: number } {
  if (requested && requested > brokers) {
    throw new Error(`kafkaReplicationFactor ${requested} is above the ${brokers} broker(s) of the cluster; lower it or add brokers`);
  }
  const replicationFactor = requested || Math.max(1, Math.min(3, brokers));
  return { replicationFactor, minInsyncReplicas: Math.max(1, Math.ceil(replicationFactor / 2)) };
}

/**
 * Right after a broker starts, or right after topics are created by another scheduler, metadata
 * requests can answer "does not host this topic-partition" or "leader not available" for a few
 * seconds. Those are retriable: wait them out (bounded) instead of failing start-up.
 */
export async function retryWhileTopicsSettle<T>(fn: () => Promise<T>, deadlineMs = 30_000): Promise<T> {
  const until = Date.now() + deadlineMs;
  for (let delay = 200; ; delay = Math.min(delay * 2, 2000)) {
    try {
      return await fn();
    } catch (err) {
      const e = err as { retriable?: boolean; message?: string };
      const settling = e.retriable === true || /does not host this topic-partition|leader not available|not the leader|coordinator/i.test(e.message ?? "");
      if (!settling || Date.now() + delay > until) throw err;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

export async function ensureTopics(admin: Admin, replicationFactor: number, wanted: { topic: string; numPartitions: number; configEntries?: { name: string; value: string }[] }[]): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = wanted.filter((t) => !existing.has(t.topic)).map((t) => ({ ...t, replicationFactor }));
  if (missing.length === 0) return;
  try {
    await admin.createTopics({ topics: missing, waitForLeaders: true });
  } catch (err) {
    // Another scheduler may have created them a moment ago.
    if (!/already exists/i.test((err as Error).message)) throw err;
  }
}
