// What the scheduler and the agents agree on over Kafka: topic names, which assignments
// partition an agent reads, message encodings, and a kafkajs client that fails fast at start
// but rides out broker restarts afterwards.
import { Kafka, logLevel as KafkaLogLevel, type Producer } from "kafkajs";
import type { Assignment, AssignmentIn, NodeLoadIn, TaskUpdate, TaskUpdateIn } from "./types.js";
import { decodeFramed, encodeFramed } from "../scheduler/backends/codec.js";

export interface KafkaTopics {
  submissions: string;
  assignments: string;
  events: string;
  load: string;
}

export const topicNames = (prefix: string): KafkaTopics => ({
  submissions: `${prefix}.submissions`,
  assignments: `${prefix}.assignments`,
  events: `${prefix}.task-events`,
  load: `${prefix}.node-load`,
});

/** FNV-1a: a stable hash so the scheduler and the agent pick the same partition for a node. */
export function partitionFor(nodeId: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < nodeId.length; i++) {
    h ^= nodeId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}

export function kafkaClient(brokers: string[], clientId: string): Kafka {
  return new Kafka({
    clientId,
    brokers,
    connectionTimeout: 3000,
    requestTimeout: 30_000,
    // Long enough to ride out a broker restart; callers add their own outer retry loops.
    retry: { initialRetryTime: 200, maxRetryTime: 2000, retries: 30 },
    logLevel: KafkaLogLevel.NOTHING,
  });
}

/** Fails within timeoutMs with an error naming the address when no broker answers. */
export async function checkBrokers(brokers: string[], timeoutMs: number): Promise<void> {
  const kafka = new Kafka({ clientId: "distx-probe", brokers, connectionTimeout: Math.min(3000, timeoutMs), retry: { retries: 1, initialRetryTime: 100 }, logLevel: KafkaLogLevel.NOTHING });
  const admin = kafka.admin();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      admin.connect().then(() => admin.describeCluster()),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error("no answer")), timeoutMs))),
    ]);
  } catch (err) {
    throw new Error(`cannot reach Kafka at ${brokers.join(",")} within ${timeoutMs} ms: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
    await admin.disconnect().catch(() => undefined);
  }
}

const MAX_REQUEST_BYTES = 1024 * 1024;

export interface OutMessage {
  topic: string;
  partition?: number;
  key: string;
  value: Buffer;
}

/**
 * A durable, batching sender: messages queued in one tick go out as one request per topic
 * (acks from all in-sync replicas, idempotent producer). A failed send is retried until it
 * succeeds or the sender closes, so nothing queued is dropped while the broker restarts.
 */
export class BatchingSender {
  private queue: OutMessage[] = [];
  private flushing?: Promise<void>;
  private scheduled = false;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  onError?: (err: Error) => void;

  constructor(readonly producer: Producer) {}

  push(msg: OutMessage): void {
    this.queue.push(msg);
    if (!this.scheduled && !this.flushing) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        void this.flush();
      });
    }
  }

  /** Sends now and resolves once the broker has acknowledged it durably. */
  async sendNow(msg: OutMessage): Promise<void> {
    await this.producer.send({ topic: msg.topic, acks: -1, messages: [{ key: msg.key, value: msg.value, ...(msg.partition !== undefined ? { partition: msg.partition } : {}) }] });
  }

  private async flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    this.flushing = (async () => {
      while (this.queue.length > 0 && !this.closed) {
        // One request carries at most ~1 MiB (a record batch must fit the topic's message size
        // limit); the rest waits for the next round.
        let take = 0;
        let bytes = 0;
        while (take < this.queue.length && (take === 0 || bytes + this.queue[take]!.value.length < MAX_REQUEST_BYTES)) {
          bytes += this.queue[take]!.value.length;
          take++;
        }
        const batch = this.queue.splice(0, take);
        const byTopic = new Map<string, OutMessage[]>();
        for (const m of batch) {
          const list = byTopic.get(m.topic) ?? [];
          list.push(m);
          byTopic.set(m.topic, list);
        }
        for (;;) {
          try {
            await this.producer.sendBatch({
              acks: -1,
              topicMessages: [...byTopic].map(([topic, msgs]) => ({
                topic,
                messages: msgs.map((m) => ({ key: m.key, value: m.value, ...(m.partition !== undefined ? { partition: m.partition } : {}) })),
              })),
            });
            break;
          } catch (err) {
            if (this.closed) return;
            this.onError?.(err as Error);
            await new Promise((r) => setTimeout(r, 500));
          }
        }
      }
    })();
    try {
      await this.flushing;
    } finally {
      this.flushing = undefined;
      if (this.queue.length > 0 && !this.closed) void this.flush();
      else for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /** Resolves once everything queued so far has been sent. */
  async idle(): Promise<void> {
    if (this.queue.length === 0 && !this.flushing && !this.scheduled) return;
    await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  async close(): Promise<void> {
    await Promise.race([this.idle(), new Promise((r) => setTimeout(r, 2000).unref())]);
    this.closed = true;
    await this.producer.disconnect().catch(() => undefined);
  }
}

type UpdateHeader = Omit<TaskUpdateIn, "output">;

export function encodeAssignment(a: AssignmentIn): Buffer {
  const { input, ...header } = a;
  return encodeFramed(header, [input instanceof Uint8Array ? input : Buffer.alloc(0)]);
}

/** The scheduler writes every field (see SchedulerCore.assign), so the decoded shape is complete. */
export function decodeAssignment(buf: Buffer): Assignment {
  const { header, buffers } = decodeFramed<Omit<Assignment, "input">>(buf);
  return { ...header, input: buffers[0] ?? Buffer.alloc(0) };
}

export function encodeUpdate(u: TaskUpdateIn): Buffer {
  const { output, ...header } = u;
  return encodeFramed(header, [output instanceof Uint8Array ? output : Buffer.alloc(0)]);
}

/** Fills the defaults protobuf would, so the scheduler sees the same shape as over gRPC. */
export function decodeUpdate(buf: Buffer): TaskUpdate {
  const { header, buffers } = decodeFramed<UpdateHeader>(buf);
  return {
    jobId: header.jobId ?? "",
    taskIndex: header.taskIndex ?? 0,
    attempt: header.attempt ?? 0,
    state: (header.state ?? "TASK_STATE_UNSPECIFIED") as TaskUpdate["state"],
    output: buffers[0] ?? Buffer.alloc(0),
    error: header.error ? { code: header.error.code ?? "", message: header.error.message ?? "" } : null,
    runMs: header.runMs ?? 0,
    waitMs: header.waitMs ?? 0,
  } as TaskUpdate;
}

export interface LoadSample {
  nodeId: string;
  draining: boolean;
  load: NodeLoadIn;
}
