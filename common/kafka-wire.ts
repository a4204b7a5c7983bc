// What the scheduler and the agents agree on over Kafka: topic names, which assignments
// partition an agent reads, message encodings, and a kafkajs client that fails fast at start
// but rides out broker restarts afterwards.
// First: it must replace kafkajs's CRC module before kafkajs loads it (kafka-fast-path.ts).
import "./kafka-fast-path.js";
import { splitByBytes as splitBatch } from "./split-by-bytes.js";
import { encodeSchedulerMessage } from "./assignment-wire.js";
import { logBytes } from "./kernel-log.js";
import { Kafka, logLevel as KafkaLogLevel, type Consumer, type Producer } from "kafkajs";
import type { MethodDefinition, ServiceDefinition } from "@grpc/proto-loader";
import type protobuf from "protobufjs";
import type { KafkaSecurity } from "./backend-security.js";
import { contractMessage, loadContract, PROTO_LOADER_OPTIONS } from "./proto.js";
import type { JobSubmission, JobSubmissionIn } from "./types.js";
import type { AgentMessage, AgentMessageIn, Assignment, AssignmentIn, CancellationIn, NodeLoadIn, SchedulerMessage, SchedulerMessageIn, TaskUpdate, TaskUpdateIn } from "./types.js";

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

/** `security`: SASL and TLS (kafkaSecurity() of the config); none means PLAINTEXT. */
export function kafkaClient(brokers: string[], clientId: string, security: KafkaSecurity = {}): Kafka {
  return new Kafka({
    clientId,
    brokers,
    ...security,
    connectionTimeout: 3000,
    requestTimeout: 30_000,
    // Long enough to ride out a broker restart; callers add their own outer retry loops.
    retry: { initialRetryTime: 200, maxRetryTime: 2000, retries: 30 },
    logLevel: KafkaLogLevel.NOTHING,
  });
}

/** Fails within timeoutMs with an error naming the address when no broker answers. */
export async function checkBrokers(brokers: string[], timeoutMs: number, security: KafkaSecurity = {}): Promise<void> {
  const kafka = new Kafka({ clientId: "distx-probe", brokers, ...security, connectionTimeout: Math.min(3000, timeoutMs), retry: { retries: 1, initialRetryTime: 100 }, logLevel: KafkaLogLevel.NOTHING });
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

/**
 * kafkajs gives up on some errors while a broker restarts (no group coordinator, …) and does not
 * restart the consumer itself: then `start` (which makes, connects and runs a fresh consumer, and
 * watches it in turn) replaces it. The fresh one resumes from the committed offsets, and nothing
 * unrecorded was committed, so nothing is skipped. Retried every second until it works or `closed()`.
 */
export function replaceWhenCrashed(consumer: Consumer, start: () => Promise<void>, closed: () => boolean, onError: (err: Error, where: string) => void): void {
  consumer.on(consumer.events.CRASH, (e) => {
    onError(e.payload.error, `consumer crashed (restart: ${e.payload.restart})`);
    if (e.payload.restart || closed()) return;
    const retry = async () => {
      if (closed()) return;
      await consumer.disconnect().catch(() => undefined);
      await start().catch((err: unknown) => {
        onError(err as Error, "consumer restart");
        setTimeout(() => void retry(), 1000).unref();
      });
    };
    setTimeout(() => void retry(), 500).unref();
  });
}

const MAX_REQUEST_BYTES = 1024 * 1024;

/** Broker refusals that no retry can cure: the record itself is refused. */
const PERMANENT_PRODUCE_ERRORS = new Set(["MESSAGE_TOO_LARGE", "RECORD_LIST_TOO_LARGE", "INVALID_RECORD", "CORRUPT_MESSAGE"]);

/** The Kafka error type when a produce failed for good (kafkajs wraps it in `cause`/`originalError`), else undefined. */
export function permanentProduceError(err: unknown): string | undefined {
  let e = err as { type?: string; cause?: unknown; originalError?: unknown } | undefined;
  for (let i = 0; e && typeof e === "object" && i < 8; i++) {
    if (e.type && PERMANENT_PRODUCE_ERRORS.has(e.type)) return e.type;
    e = (e.cause ?? e.originalError) as typeof e;
  }
  return undefined;
}

export interface OutMessage {
  topic: string;
  partition?: number;
  key: string;
  value: Buffer;
  /** A node's signature and certificate (common/record-signature.ts), on agents' records. */
  headers?: Record<string, Buffer>;
}

/** A record's bytes in a request: its value and its headers' values (keys and framing are small). */
function recordBytes(m: OutMessage): number {
  let n = m.value.length;
  if (m.headers) for (const h of Object.values(m.headers)) n += h.length;
  return n;
}

const toKafkaMessage = (m: OutMessage) => ({ key: m.key, value: m.value, ...(m.partition !== undefined ? { partition: m.partition } : {}), ...(m.headers ? { headers: m.headers } : {}) });

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
  /**
   * A message the broker refused for good (e.g. over the topic's max.message.bytes). It is
   * dropped, never retried (it would block everything queued behind it for ever); what this
   * returns is sent in its place: `split`, the same content in smaller messages, each of which
   * may be refused again on its own; or `instead`, a final replacement (an agent sends the
   * task's failure instead of its result), dropped if refused too.
   */
  onRejected?: (msg: OutMessage, errorType: string, err: Error) => { split?: OutMessage[]; instead?: OutMessage[] };

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
    await this.producer.send({ topic: msg.topic, acks: -1, messages: [toKafkaMessage(msg)] });
  }

  private async flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    this.flushing = (async () => {
      while (this.queue.length > 0 && !this.closed) {
        // One request carries at most ~1 MiB (a record batch must fit the topic's message size
        // limit); the rest waits for the next round.
        let take = 0;
        let bytes = 0;
        while (take < this.queue.length && (take === 0 || bytes + recordBytes(this.queue[take]!) < MAX_REQUEST_BYTES)) {
          bytes += recordBytes(this.queue[take]!);
          take++;
        }
        await this.sendAll(this.queue.splice(0, take), false);
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

  /**
   * Sends messages in order, retrying transient failures until the sender closes. On a permanent
   * refusal of a request holding several messages, each is sent alone (in order) to find the
   * refused one; that one is handed to onRejected and the rest go through.
   */
  private async sendAll(batch: OutMessage[], replacement: boolean): Promise<void> {
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
            messages: msgs.map(toKafkaMessage),
          })),
        });
        return;
      } catch (err) {
        if (this.closed) return;
        const permanent = permanentProduceError(err);
        if (!permanent) {
          this.onError?.(err as Error);
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        if (batch.length > 1) {
          for (const m of batch) await this.sendAll([m], replacement);
          return;
        }
        const msg = batch[0]!;
        this.onError?.(new Error(`the broker refused a ${msg.value.length}-byte record for ${msg.topic} for good (${permanent}); not retried: ${(err as Error).message}`));
        // A replacement that is refused too is dropped: never loop. A split makes progress (each
        // part is smaller), so its parts may be refused and handled again.
        if (replacement) return;
        const { split = [], instead = [] } = this.onRejected?.(msg, permanent, err as Error) ?? {};
        for (const part of split) await this.sendAll([part], false);
        if (instead.length > 0) await this.sendAll(instead, true);
        return;
      }
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

// Assignment and task-event records carry the very messages of the gRPC session (proto/ is the
// one wire contract): SchedulerMessage{assigns} and AgentMessage{updates}. One record holds what
// one turn produced for one node, so per-record costs (framing, CRC, offsets) are paid per batch.
type SessionMethod = MethodDefinition<AgentMessageIn, SchedulerMessageIn, AgentMessage, SchedulerMessage>;
let session: SessionMethod | undefined;
const sessionMethod = (): SessionMethod => (session ??= (loadContract().definition["distributex.v1.AgentService"] as ServiceDefinition)["Session"] as SessionMethod);

export function encodeAssignments(items: AssignmentIn[]): Buffer {
  return encodeSchedulerMessage({ assigns: { items } }, sessionMethod().responseSerialize);
}

/** A cancel for an agent, as a record on its assignments partition: behind what it cancels. */
export function encodeCancel(cancel: CancellationIn): Buffer {
  return sessionMethod().responseSerialize({ cancel });
}

/** An assignments-partition record: assignments, or a cancel. */
export function decodeSchedulerMessage(buf: Buffer): SchedulerMessage {
  return sessionMethod().responseDeserialize(buf);
}

export function assignmentsOf(msg: SchedulerMessage): Assignment[] {
  return msg.assigns?.items ?? (msg.assign ? [msg.assign] : []);
}

export function encodeUpdates(items: TaskUpdateIn[]): Buffer {
  return sessionMethod().requestSerialize({ updates: { items } });
}

export function decodeUpdates(buf: Buffer): TaskUpdate[] {
  const msg = sessionMethod().requestDeserialize(buf);
  return msg.updates?.items ?? (msg.update ? [msg.update] : []);
}

let submissionType: protobuf.Type | undefined;
const jobSubmission = (): protobuf.Type => (submissionType ??= contractMessage("JobSubmission"));

/** A submissions record: the proto's JobSubmission. */
export function encodeSubmission(sub: JobSubmissionIn): Buffer {
  const type = jobSubmission();
  const bytes = type.encode(type.fromObject(sub as Record<string, unknown>)).finish();
  // A view, not Buffer.from(bytes): that would copy a submission of up to 64 MiB byte by byte.
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function decodeSubmission(buf: Buffer): JobSubmission {
  const type = jobSubmission();
  const { longs, enums, defaults, oneofs } = PROTO_LOADER_OPTIONS;
  return type.toObject(type.decode(buf), { longs, enums, defaults, oneofs, bytes: Buffer }) as JobSubmission;
}

/** Bytes one record may hold before a batch is split (the topics allow 64 MiB; requests stay ~1 MiB). */
const RECORD_BUDGET_BYTES = 512 * 1024;

/** Splits a batch into runs that fit one record (see common/split-by-bytes.ts). */
export function splitByBytes<T>(items: T[], size: (item: T) => number, budget = RECORD_BUDGET_BYTES): T[][] {
  return splitBatch(items, size, budget);
}

export const assignmentBytes = (a: AssignmentIn): number => (a.input as Uint8Array | undefined)?.byteLength ?? 0;
/** An update's bulk: its output and the kernel's log lines (each capped per task: common/kernel-log.ts). */
export const updateBytes = (u: TaskUpdateIn): number => ((u.output as Uint8Array | undefined)?.byteLength ?? 0) + logBytes(u.logs);

export interface LoadSample {
  nodeId: string;
  draining: boolean;
  load: NodeLoadIn;
}

/** A load sample is a few hundred bytes; anything far larger is not one of ours. */
const MAX_LOAD_RECORD_BYTES = 64 * 1024;
let nodeLoadType: protobuf.Type | undefined;

/**
 * A node-load record, checked as strictly as the heartbeat's NodeLoad on the gRPC session: the
 * proto's field types (verify), then its defaults filled in, so the scheduler sees the same shape
 * either way. Throws on anything else.
 */
export function decodeLoadSample(buf: Buffer): LoadSample {
  if (buf.length > MAX_LOAD_RECORD_BYTES) throw new Error(`load record of ${buf.length} bytes (limit ${MAX_LOAD_RECORD_BYTES})`);
  const raw = JSON.parse(buf.toString("utf8")) as unknown;
  if (typeof raw !== "object" || raw === null) throw new Error("load record is not an object");
  const { nodeId, draining, load } = raw as Record<string, unknown>;
  if (typeof nodeId !== "string" || nodeId.length === 0 || nodeId.length > 256) throw new Error("load record: nodeId must be a string of 1..256 characters");
  if (typeof draining !== "boolean") throw new Error("load record: draining must be a boolean");
  const type = (nodeLoadType ??= contractMessage("NodeLoad"));
  if (typeof load !== "object" || load === null || Array.isArray(load)) throw new Error("load record: load must be an object");
  // 64-bit fields travel as decimal strings (longs: String); verify() wants numbers for them.
  const probe: Record<string, unknown> = { ...(load as Record<string, unknown>) };
  for (const f of type.fieldsArray) {
    if (/64$/.test(f.type) && typeof probe[f.name] === "string") {
      if (!/^\d{1,20}$/.test(probe[f.name] as string)) throw new Error(`load record: ${f.name} must be a whole number`);
      probe[f.name] = 0;
    }
    // The wire cannot carry a negative unsigned value; JSON can.
    if (/^(uint|fixed)/.test(f.type) && typeof probe[f.name] === "number" && (probe[f.name] as number) < 0) throw new Error(`load record: ${f.name} must be ≥ 0`);
  }
  const bad = type.verify(probe);
  if (bad) throw new Error(`load record: ${bad}`);
  const { longs, enums, defaults } = PROTO_LOADER_OPTIONS;
  return { nodeId, draining, load: type.toObject(type.fromObject(load as Record<string, unknown>), { longs, enums, defaults }) as NodeLoadIn };
}
