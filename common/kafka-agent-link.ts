// An agent's Kafka side (in common/: the agent uses it, and so does the Kafka bus for in-process
// agents and tests, so the scheduler never imports agent/): it reads its assignments (and the cancels behind them) from one
// partition of the assignments topic (hash of its node id; messages for other nodes on that
// partition are skipped) and writes its
// task updates and load samples back. Opened after Register, before the session's hello, and
// positioned at the partition's end first, so every assignment for this node id is seen.
// First: it must replace kafkajs's CRC module before kafkajs loads it (kafka-fast-path.ts).
import "./kafka-fast-path.js";
import { AssignerProtocol, type Consumer, type PartitionAssigner, type Producer, type ProducerBatch } from "kafkajs";
import { assignmentsOf, BatchingSender, decodeSchedulerMessage, decodeUpdates, encodeUpdates, kafkaClient, replaceWhenCrashed, splitByBytes, updateBytes, type LoadSample, type OutMessage } from "./kafka-wire.js";
import type { Assignment, Cancellation, TaskUpdateIn } from "./types.js";
import type { KafkaSecurity } from "./backend-security.js";
import { taskErrorProto } from "./task-errors.js";
import type { RecordSigner } from "./record-signature.js";
import type { NodeKeyRing } from "./record-seal.js";

/** Dropped (unopenable) assignments records are logged at most this often, with counts. */
const DROP_LOG_EVERY_MS = 60_000;

/**
 * The broker refused a record of task updates for good (a result over the events topic's
 * max.message.bytes): those tasks fail with OUTPUT_TOO_LARGE (not retryable: the output would be
 * as large anywhere) instead of their results blocking every later update of this agent.
 * Returns the updates that go instead, in the order of `updates`.
 */
function failedInstead(updates: TaskUpdateIn[], errorType: string): TaskUpdateIn[] {
  return updates.map((u): TaskUpdateIn => {
    if (u.state !== "TASK_STATE_SUCCEEDED") return u;
    const bytes = (u.output as Uint8Array | undefined)?.byteLength ?? 0;
    return {
      jobId: u.jobId,
      taskIndex: u.taskIndex,
      attempt: u.attempt,
      state: "TASK_STATE_FAILED",
      runMs: u.runMs,
      error: taskErrorProto({ code: "OUTPUT_TOO_LARGE", message: `the task's ${bytes}-byte output is over the task-events topic's record limit (the broker said ${errorType}); not retryable` }),
      // The log is capped far below any record limit: the author still sees what the kernel said.
      ...(u.logs && u.logs.length > 0 ? { logs: u.logs } : {}),
    };
  });
}

/**
 * What became of the task updates sent: acknowledged by the broker, or refused for good and
 * replaced (update by update, in order) by what the scheduler gets instead. An agent counts a
 * task as succeeded only once its result is delivered.
 */
export interface UpdateReceipts {
  delivered(updates: TaskUpdateIn[]): void;
  replaced(updates: TaskUpdateIn[], instead: TaskUpdateIn[]): void;
}

/** What an agent's assignments partition carries for it, in the order the scheduler sent it. */
export interface AssignmentHandlers {
  assign(a: Assignment): void;
  /** A cancel comes behind the assignments it cancels (the same partition), never before them. */
  cancel(c: Cancellation): void;
}

export interface KafkaRouteShape {
  brokers: string[];
  assignmentsTopic: string;
  assignmentsPartition: number;
  eventsTopic: string;
  loadTopic: string;
}

/** Every member of this node's own consumer group reads exactly its one partition. */
const fixedPartition =
  (topic: string, partition: number): PartitionAssigner =>
  () => ({
    name: "DistxFixedPartition",
    version: 1,
    async assign({ members }) {
      return members.map((m) => ({
        memberId: m.memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 1, assignment: { [topic]: [partition] }, userData: Buffer.alloc(0) }),
      }));
    },
    protocol({ topics }) {
      return { name: "DistxFixedPartition", metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }) };
    },
  });

/** A record on this node's assignments partition that was skipped (not sealed for it, or not
 * decodable): reported through onError, but it is not a Kafka problem and nothing is retried. */
export class DroppedRecordError extends Error {
  override readonly name = "DroppedRecordError";
}

export class KafkaAgentLink {
  private constructor(
    private readonly route: KafkaRouteShape,
    private readonly nodeId: string,
    private consumer: Consumer,
    private readonly sender: BatchingSender,
    private readonly receipts?: UpdateReceipts,
    private readonly brokerHeard: { atMs: number } = { atMs: Date.now() },
    private readonly signer?: RecordSigner,
  ) {}

  /** A record this node writes: signed with its node certificate when it has one (secure clusters). */
  private record(topic: string, value: Buffer): OutMessage {
    const key = this.nodeId;
    return this.signer ? { topic, key, value, headers: this.signer.headers(topic, key, value) } : { topic, key, value };
  }

  /** The brokers this link talks to. */
  get brokers(): string[] {
    return this.route.brokers;
  }

  /**
   * How long ago the assignment consumer last heard from the broker (a fetch answered or a group
   * heartbeat acknowledged; an idle consumer still fetches every maxWaitTimeInMs). While the broker
   * is out of reach this grows, though the agent's gRPC session may be fine.
   */
  brokerSilentForMs(now = Date.now()): number {
    return now - this.brokerHeard.atMs;
  }

  closed = false;
  /** Update records sent and not acknowledged or refused yet, by their bytes (the sender hands back the same Buffer). */
  private readonly unacknowledged = new Map<Buffer, TaskUpdateIn[]>();

  /** The broker acknowledged a request: the update records in it are delivered. */
  private acknowledged(batch: ProducerBatch): void {
    if (!this.receipts || this.unacknowledged.size === 0) return;
    for (const { topic, messages } of batch.topicMessages ?? []) {
      if (topic !== this.route.eventsTopic) continue;
      for (const m of messages) {
        const updates = this.unacknowledged.get(m.value as Buffer);
        if (!updates) continue;
        this.unacknowledged.delete(m.value as Buffer);
        this.receipts.delivered(updates);
      }
    }
  }

  /**
   * The broker refused an update record for good. A record of several updates (one turn's) is
   * sent again one update per record: the topic's limit may be below what the turn produced but
   * above each task's own update, and a task fails only for its own output. A record of one
   * update that is refused has its task's failure sent instead.
   */
  private refused(msg: OutMessage, errorType: string): { split?: OutMessage[]; instead?: OutMessage[] } {
    let updates = this.unacknowledged.get(msg.value);
    this.unacknowledged.delete(msg.value);
    if (!updates) {
      try {
        updates = decodeUpdates(msg.value);
      } catch {
        return {};
      }
    }
    if (updates.length > 1) {
      return {
        split: updates.map((u) => {
          const value = encodeUpdates([u]);
          if (this.receipts) this.unacknowledged.set(value, [u]);
          return this.record(this.route.eventsTopic, value);
        }),
      };
    }
    const instead = failedInstead(updates, errorType);
    this.receipts?.replaced(updates, instead);
    return { instead: splitByBytes(instead, updateBytes).map((run) => this.record(this.route.eventsTopic, encodeUpdates(run))) };
  }

  static async open(
    route: KafkaRouteShape,
    nodeId: string,
    handlers: AssignmentHandlers,
    onError?: (err: Error) => void,
    timeoutMs = 20_000,
    /** The agent's own principal: the scheduler's route never carries credentials. */
    security: KafkaSecurity = {},
    receipts?: UpdateReceipts,
    /** The node certificate's signer: every task-event and load record is signed (secure clusters; absent with --insecure). */
    signer?: RecordSigner,
    /** The node's keys: every assignments record must open with one (secure clusters; absent with --insecure). */
    keys?: NodeKeyRing,
  ): Promise<KafkaAgentLink> {
    const kafka = kafkaClient(route.brokers, `distx-agent-${nodeId}`, security);
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    const admin = kafka.admin();
    const brokerHeard = { atMs: Date.now() };
    const heard = () => void (brokerHeard.atMs = Date.now());
    const makeConsumer = (): Consumer => {
      const c = kafka.consumer({
        groupId: `distx-agent-${nodeId}`,
        partitionAssigners: [fixedPartition(route.assignmentsTopic, route.assignmentsPartition)],
        sessionTimeout: 6000,
        heartbeatInterval: 1000,
        maxWaitTimeInMs: 20,
        maxBytesPerPartition: 64 * 1024 * 1024,
      });
      c.on(c.events.FETCH, heard);
      c.on(c.events.HEARTBEAT, heard);
      c.on(c.events.GROUP_JOIN, heard);
      return c;
    };
    const consumer = makeConsumer();
    let droppedLoggedAt = 0;
    const runConsumer = (c: Consumer) =>
      c.run({
        autoCommit: true,
        eachBatch: async ({ batch, resolveOffset }) => {
          for (const m of batch.messages) {
            if (m.value && m.key?.toString() === nodeId) {
              let msg: ReturnType<typeof decodeSchedulerMessage> | undefined;
              // Secure clusters: a record is read only if it opens with this node's key; an
              // unsealed one is never decoded as plaintext (no downgrade).
              const opened = keys?.open(batch.topic, nodeId, m.value, m.headers);
              if (opened?.refused) {
                if (Date.now() - droppedLoggedAt >= DROP_LOG_EVERY_MS) {
                  droppedLoggedAt = Date.now();
                  onError?.(new DroppedRecordError(`assignments record at offset ${m.offset} dropped (${opened.refused}); dropped so far: ${JSON.stringify(Object.fromEntries(keys!.refused))}`));
                }
              } else {
                try {
                  msg = decodeSchedulerMessage(opened ? opened.value : m.value);
                } catch (err) {
                  // Not a record the scheduler wrote: skip it; throwing would replay it forever.
                  onError?.(new DroppedRecordError(`undecodable assignments record at offset ${m.offset}: ${(err as Error).message}`));
                }
              }
              if (msg) {
                for (const a of assignmentsOf(msg)) handlers.assign(a);
                if (msg.cancel) handlers.cancel(msg.cancel);
              }
            }
            resolveOffset(m.offset);
          }
        },
      });
    const deadline = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`Kafka at ${route.brokers.join(",")} did not answer within ${timeoutMs} ms`)), timeoutMs).unref(),
    );
    const open = async () => {
      await Promise.all([producer.connect(), admin.connect(), consumer.connect()]);
      const offsets = await admin.fetchTopicOffsets(route.assignmentsTopic);
      await admin.disconnect();
      const end = offsets.find((o) => o.partition === route.assignmentsPartition)?.high ?? "0";
      const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
      // Earliest, never latest, when no offset is committed: a consumer that restarts (e.g. after
      // a broker restart) must not skip assignments written while it was away.
      await consumer.subscribe({ topic: route.assignmentsTopic, fromBeginning: true });
      await runConsumer(consumer);
      consumer.seek({ topic: route.assignmentsTopic, partition: route.assignmentsPartition, offset: end });
      await joined;
      // Commit the start position at once, so a restart resumes here rather than at the earliest offset.
      await consumer.commitOffsets([{ topic: route.assignmentsTopic, partition: route.assignmentsPartition, offset: end }]);
    };
    try {
      await Promise.race([open(), deadline]);
    } catch (err) {
      await Promise.allSettled([consumer.disconnect(), producer.disconnect(), admin.disconnect()]);
      throw err;
    }
    // The sender's requests go through here, so that the link learns which update records the
    // broker acknowledged (their Buffers are the ones sendUpdates queued).
    let link: KafkaAgentLink | undefined;
    const receiptProducer: Producer = {
      ...producer,
      sendBatch: async (batch) => {
        const metadata = await producer.sendBatch(batch);
        link?.acknowledged(batch);
        return metadata;
      },
    };
    const sender = new BatchingSender(receipts ? receiptProducer : producer);
    if (onError) sender.onError = onError;
    sender.onRejected = (msg, errorType) => (msg.topic === route.eventsTopic && link ? link.refused(msg, errorType) : {});
    heard();
    link = new KafkaAgentLink(route, nodeId, consumer, sender, receipts, brokerHeard, signer);
    const opened = link;
    const watch = (c: Consumer): void =>
      replaceWhenCrashed(
        c,
        async () => {
          const next = makeConsumer();
          opened.consumer = next;
          watch(next);
          await next.connect();
          await next.subscribe({ topic: route.assignmentsTopic, fromBeginning: true });
          await runConsumer(next);
        },
        () => opened.closed,
        (err, where) => onError?.(new Error(`assignment ${where}: ${err.message}`)),
      );
    watch(consumer);
    return opened;
  }

  /** One record per batch (split only when large outputs would overfill a record). */
  sendUpdates(updates: TaskUpdateIn[]): void {
    for (const run of splitByBytes(updates, updateBytes)) {
      const value = encodeUpdates(run);
      if (this.receipts) this.unacknowledged.set(value, run);
      this.sender.push(this.record(this.route.eventsTopic, value));
    }
  }

  sendLoad(sample: LoadSample): void {
    this.sender.push(this.record(this.route.loadTopic, Buffer.from(JSON.stringify(sample))));
  }

  flush(): Promise<void> {
    return this.sender.idle();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.sender.close();
    this.unacknowledged.clear();
    await this.consumer.disconnect().catch(() => undefined);
  }
}
