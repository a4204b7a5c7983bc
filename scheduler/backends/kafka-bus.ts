// The Kafka TaskBus. Topics (prefix configurable, default "distx"):
//   <p>.submissions   key job id      the durable submission log (written before the client's ack)
//   <p>.assignments   key node id     partition = hash(node id) mod N; each agent reads one partition
//                                     (assignments, and cancels behind the assignments they cancel)
//   <p>.task-events   key node id     task state changes and results, agent → scheduler
//   <p>.node-load     key node id     load samples, a real-time stream
// The scheduler consumes submissions, events and load in one consumer group and commits an offset only after the handler for that
// record (and every earlier one) has resolved. With a state store, each active scheduler consumes in a group of its own that
// starts at its predecessor's offsets (takeOverOffsets): a failover does not wait out a dead member's session.
import { randomUUID } from "node:crypto";
import type { Consumer, Kafka } from "kafkajs";
import type { KafkaSecurity } from "../../common/backend-security.js";
import type { RemoteAgentRoutes } from "../../common/agent-bus.js";
import type { KafkaRouteShape } from "../../common/kafka-agent-link.js";
import {
  assignmentBytes,
  BatchingSender,
  checkBrokers,
  decodeLoadSample,
  decodeSubmission,
  decodeUpdates,
  encodeAssignments,
  encodeCancel,
  encodeSubmission,
  encodeUpdates,
  kafkaClient,
  partitionFor,
  replaceWhenCrashed,
  splitByBytes,
  topicNames,
  updateBytes,
  type KafkaTopics,
  type LoadSample,
} from "../../common/kafka-wire.js";
import type { Assignment, AssignmentIn, Cancellation, CancellationIn, TaskUpdate, TaskUpdateIn } from "../../common/types.js";
import { resourceExhausted } from "../../common/errors.js";
import type { SealRecipient } from "../../common/record-seal.js";
import { assignmentsRecord } from "./sealed-assignments.js";
import { ensureTopics, replicationFor, retryWhileTopicsSettle } from "./kafka-topics.js";
import { OwnSubmissions } from "./own-submissions.js";
import { fromJobSubmission, toJobSubmission, type BusHandlers, type ConsumerGroupHandoff, type SubmissionRecord, type TaskBus } from "./bus.js";

export interface KafkaBusOptions {
  brokers: string[];
  /** What agents are told to dial, when it differs from `brokers`. */
  agentBrokers?: string[];
  topicPrefix: string;
  partitions: number;
  assignmentPartitions: number;
  connectTimeoutMs: number;
  groupId?: string;
  /** SASL and TLS of the scheduler's principal (kafkaSecurity() of its config). */
  security?: KafkaSecurity;
  /** Secure clusters: assignments records are sealed to their node's key, never sent in clear (sealed-assignments.ts). */
  sealAssignments?: boolean;
  /** Replicas of each topic created; 0 or unset = min(3, brokers). */
  replicationFactor?: number;
  onError?: (err: Error, where: string) => void;
  /** Durability warnings (a single replica): the operator should know. */
  onWarning?: (message: string, details: Record<string, unknown>) => void;
}

/** Records whose signatures are checked at once (on the thread pool) before any of them is handled. */
const VERIFY_WINDOW = 64;

/** The submissions topic is created with max.message.bytes = 64 MiB; leave room for framing. */
export const MAX_SUBMISSION_BYTES = 64 * 1024 * 1024 - 64 * 1024;

export class KafkaBus implements TaskBus {
  readonly kind = "kafka";
  readonly topics: KafkaTopics;
  private consumer?: Consumer;
  private closed = false;
  private readonly own = new OwnSubmissions(); // what this process appended: not decoded when read back

  private constructor(
    private readonly kafka: Kafka,
    private readonly options: KafkaBusOptions,
    private readonly sender: BatchingSender,
    /** The assignments topic's real partition count (a pre-existing topic may differ from config). */
    readonly assignmentPartitions: number,
  ) {
    this.topics = topicNames(options.topicPrefix);
  }

  static async connect(options: KafkaBusOptions): Promise<KafkaBus> {
    await checkBrokers(options.brokers, options.connectTimeoutMs, options.security);
    const kafka = kafkaClient(options.brokers, "distx-scheduler", options.security);
    const topics = topicNames(options.topicPrefix);
    const admin = kafka.admin();
    await admin.connect();
    let assignmentPartitions: number;
    try {
      const { brokers } = await retryWhileTopicsSettle(() => admin.describeCluster());
      const { replicationFactor, minInsyncReplicas } = replicationFor(options.replicationFactor, brokers.length);
      if (replicationFactor === 1) {
        options.onWarning?.(
          `Kafka topics have a single replica (${brokers.length} broker(s)): an acknowledged job or result is lost with that broker's disk; run 3 brokers or set kafkaReplicationFactor`,
          { replicationFactor, brokers: brokers.length },
        );
      }
      const durable = [{ name: "min.insync.replicas", value: String(minInsyncReplicas) }];
      await retryWhileTopicsSettle(() => ensureTopics(admin, replicationFactor, [
        { topic: topics.submissions, numPartitions: options.partitions, configEntries: [...durable, { name: "max.message.bytes", value: String(64 * 1024 * 1024) }] },
        { topic: topics.assignments, numPartitions: options.assignmentPartitions, configEntries: [...durable, { name: "max.message.bytes", value: String(64 * 1024 * 1024) }] },
        { topic: topics.events, numPartitions: options.partitions, configEntries: [...durable, { name: "max.message.bytes", value: String(64 * 1024 * 1024) }] },
        { topic: topics.load, numPartitions: options.partitions, configEntries: [{ name: "retention.ms", value: String(3600_000) }] },
      ]));
      const meta = await retryWhileTopicsSettle(() => admin.fetchTopicMetadata({ topics: [topics.assignments] }));
      assignmentPartitions = meta.topics[0]?.partitions.length ?? options.assignmentPartitions;
    } finally {
      await admin.disconnect();
    }
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await producer.connect();
    const sender = new BatchingSender(producer);
    sender.onError = (err) => options.onError?.(err, "produce");
    return new KafkaBus(kafka, options, sender, assignmentPartitions);
  }

  async appendSubmission(rec: SubmissionRecord): Promise<void> {
    const value = encodeSubmission(toJobSubmission(rec));
    if (value.length > MAX_SUBMISSION_BYTES) {
      // Over the topic's max.message.bytes the broker would refuse it after long retries: say so now.
      throw resourceExhausted(`the job's inputs take ${value.length} bytes; with --bus kafka one submission is limited to ${MAX_SUBMISSION_BYTES} bytes; not retryable: split the job`);
    }
    await this.own.append(rec.jobId, value.length, () => this.sender.sendNow({ topic: this.topics.submissions, key: rec.jobId, value }));
  }

  publishCancel(nodeId: string, cancel: CancellationIn, sealTo?: SealRecipient): void {
    // The node's assignments partition, through the same ordered sender: it lands behind them.
    this.sender.push(assignmentsRecord(this.assignmentsAt(nodeId), nodeId, encodeCancel(cancel), sealTo, !!this.options.sealAssignments));
  }

  publishAssignments(nodeId: string, items: AssignmentIn[], sealTo?: SealRecipient): void {
    // Every record is built (a missing key refused) before any is queued.
    for (const r of splitByBytes(items, assignmentBytes).map((run) => assignmentsRecord(this.assignmentsAt(nodeId), nodeId, encodeAssignments(run), sealTo, !!this.options.sealAssignments))) this.sender.push(r);
  }

  private assignmentsAt(nodeId: string): { topic: string; partition: number } {
    return { topic: this.topics.assignments, partition: partitionFor(nodeId, this.assignmentPartitions) };
  }

  get agentRouting(): RemoteAgentRoutes {
    return this;
  }

  routeFor(nodeId: string): KafkaRouteShape {
    return {
      brokers: this.options.agentBrokers ?? this.options.brokers,
      assignmentsTopic: this.topics.assignments,
      assignmentsPartition: partitionFor(nodeId, this.assignmentPartitions),
      eventsTopic: this.topics.events,
      loadTopic: this.topics.load,
    };
  }

  async consume(handlers: BusHandlers, handoff?: ConsumerGroupHandoff): Promise<void> {
    // A scheduler that stepped down while starting closes its bus before start() gets here: a
    // consumer started now would handle records for a scheduler that no longer leads.
    if (this.closed) return;
    const takeover = handoff ? await this.takeOverOffsets(handoff) : undefined;
    if (this.closed) return;
    const consumer = this.kafka.consumer({
      groupId: takeover?.groupId ?? this.options.groupId ?? this.sharedGroupId,
      sessionTimeout: 6000,
      heartbeatInterval: 1000,
      rebalanceTimeout: 10_000,
      maxWaitTimeInMs: 20,
      maxBytesPerPartition: 64 * 1024 * 1024,
    });
    this.consumer = consumer;
    replaceWhenCrashed(consumer, () => this.consume(handlers, handoff), () => this.closed, (err, where) => this.options.onError?.(err, where));
    if (takeover) {
      // Before the first fetch: kafkajs applies (and, with autoCommit, commits) a seek at the
      // start of the next fetch, and GROUP_JOIN is emitted before the fetch loop starts. Only on
      // the first join: a later one resumes from what this consumer committed itself.
      let joined = false;
      consumer.on(consumer.events.GROUP_JOIN, () => {
        if (joined) return;
        joined = true;
        for (const at of takeover.offsets) consumer.seek(at);
      });
    }
    await consumer.connect();
    await consumer.subscribe({ topics: [this.topics.submissions, this.topics.events, this.topics.load], fromBeginning: true });
    await consumer.run({
      partitionsConsumedConcurrently: Math.max(1, this.options.partitions),
      eachBatchAutoResolve: false,
      autoCommit: true,
      eachBatch: async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }) => {
        const msgs = batch.messages;
        const verify = handlers.verify;
        if (batch.topic === this.topics.load) {
          for (let at = 0; at < msgs.length; at += VERIFY_WINDOW) {
            const window = msgs.slice(at, at + VERIFY_WINDOW);
            const verdicts = verify && (await Promise.all(window.map((m) => (m.value ? verify(batch.topic, m.key, m.value, m.headers) : undefined))));
            for (const [i, m] of window.entries()) {
              const verdict = verdicts?.[i];
              if (m.value && verdict?.rejected) {
                handlers.rejected?.("node-load", verdict.rejected);
              } else if (m.value) {
                let sample: LoadSample | undefined;
                try {
                  sample = decodeLoadSample(m.value);
                } catch {
                  // A malformed sample is only a lost sample: counted, never handed on.
                  handlers.rejected?.("node-load", m.value.length > 64 * 1024 ? "oversized" : "malformed");
                }
                // The sample names its node inside too: it must be the node that signed it.
                if (sample && verdict && sample.nodeId !== verdict.nodeId) handlers.rejected?.("node-load", "claims_other_node");
                else if (sample) handlers.load(sample);
              }
              resolveOffset(m.offset);
            }
          }
          return;
        }
        if (batch.topic === this.topics.submissions) {
          for (const m of msgs) {
            if (!isRunning() || isStale()) return;
            if (m.value && !this.own.readBack(m.key, m.value, handlers.holds)) {
              let rec: SubmissionRecord | undefined;
              if (m.value.length > MAX_SUBMISSION_BYTES) {
                // Larger than appendSubmission ever writes: not ours; never decoded.
                handlers.rejected?.("submissions", "oversized");
                this.options.onError?.(new Error(`${m.value.length} bytes`), `oversized submission record at offset ${m.offset} dropped`);
              } else {
                try {
                  rec = fromJobSubmission(decodeSubmission(m.value));
                } catch (err) {
                  // Not a submission this version can read: nothing in it can be adopted; skip it rather than stall.
                  handlers.rejected?.("submissions", "undecodable");
                  this.options.onError?.(err as Error, `undecodable submission record at offset ${m.offset}`);
                }
              }
              if (rec) await handlers.submission(rec);
            }
            resolveOffset(m.offset);
            await heartbeat();
          }
          await commitOffsetsIfNecessary();
          return;
        }
        // Task events: each record holds a batch of one node's updates. Updates are handled
        // concurrently in slices (each call takes its synchronous steps in order, so RUNNING
        // before SUCCEEDED for one task holds); an offset is resolved only after every handler
        // up to it has recorded its work.
        let slice: { nodeId: string; update: TaskUpdate }[] = [];
        let lastOffset: string | undefined;
        const handleSlice = async () => {
          await Promise.all(slice.map((rec) => handlers.event(rec)));
          if (lastOffset !== undefined) resolveOffset(lastOffset);
          slice = [];
          await heartbeat();
        };
        // With a verifier (secure clusters), a record's node id is the one its signature proves,
        // checked before the value is decoded; the signatures of a window are checked together.
        for (let at = 0; at < msgs.length; at += VERIFY_WINDOW) {
          if (!isRunning() || isStale()) return;
          const window = msgs.slice(at, at + VERIFY_WINDOW);
          const verdicts = verify && (await Promise.all(window.map((m) => (m.value ? verify(batch.topic, m.key, m.value, m.headers) : undefined))));
          for (const [i, m] of window.entries()) {
            const verdict = verdicts?.[i];
            if (m.value && verdict?.rejected) {
              handlers.eventRejected?.(verdict.rejected, m.key?.toString("utf8").slice(0, 64) ?? "");
            } else if (m.value && m.key) {
              const nodeId = verdict?.nodeId ?? m.key.toString();
              let updates: TaskUpdate[] = [];
              try {
                updates = decodeUpdates(m.value);
              } catch (err) {
                // Not ours (or corrupt): nothing in it can be recorded, so skip it rather than stall.
                this.options.onError?.(err as Error, `undecodable task-event record at offset ${m.offset}`);
              }
              for (const update of updates) slice.push({ nodeId, update });
            }
            lastOffset = m.offset;
            if (slice.length >= 1024) await handleSlice();
          }
        }
        await handleSlice();
        await commitOffsetsIfNecessary();
      },
    });
  }

  /** The group every scheduler shared before the handoff (and still does without one). */
  private get sharedGroupId(): string {
    return `${this.options.topicPrefix}-scheduler`;
  }

  /**
   * A consumer group of this scheduler's own, to start at the offsets its predecessor committed.
   * Joining the predecessor's group would wait for that member's session to time out (it was
   * killed or is paused) before any partition is assigned; a new group is assigned at once.
   * (kafkajs's admin.setOffsets joins the group to commit, which costs seconds: the consumer
   * seeks to these offsets on joining instead.) Records the predecessor handled after they were
   * read are handled again: delivery is at-least-once, and every handler is idempotent.
   */
  private async takeOverOffsets(handoff: ConsumerGroupHandoff): Promise<{ groupId: string; offsets: { topic: string; partition: number; offset: string }[] }> {
    const previous = (await handoff.previous()) ?? this.sharedGroupId;
    const groupId = `${this.sharedGroupId}-${randomUUID()}`;
    const topics = [this.topics.submissions, this.topics.events, this.topics.load];
    // Where the predecessor started, moved forward by whatever it committed since (offsets only
    // grow): a predecessor that died before committing anything passes its own start on.
    const start = await handoff.startOffsets();
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      // Right after a broker starts, its group coordinator answers "not the correct coordinator"
      // for a few seconds: wait that out as topic metadata is waited out.
      for (const { topic, partitions } of await retryWhileTopicsSettle(() => admin.fetchOffsets({ groupId: previous, topics }))) {
        for (const p of partitions) {
          const at = `${topic}:${p.partition}`;
          if (Number(p.offset) > Number(start.get(at) ?? -1)) start.set(at, p.offset);
        }
      }
      await handoff.record(groupId, start);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    this.deleteGroupLater(previous);
    const offsets = [...start].map(([at, offset]) => {
      const cut = at.lastIndexOf(":");
      return { topic: at.slice(0, cut), partition: Number(at.slice(cut + 1)), offset };
    });
    return { groupId, offsets };
  }

  /**
   * The predecessor's group is no longer needed, but the broker refuses to delete it while its
   * dead member's session lasts, and kafkajs retries that refusal for many seconds: never on
   * the takeover's path. One try a minute later; a group left behind (its member paused) only
   * holds offsets the broker expires.
   */
  private deleteGroupLater(groupId: string): void {
    const timer = setTimeout(() => {
      if (this.closed) return;
      const admin = this.kafka.admin({ retry: { retries: 0 } });
      void admin
        .connect()
        .then(() => admin.deleteGroups([groupId]))
        .catch(() => undefined)
        .finally(() => void admin.disconnect().catch(() => undefined));
    }, 60_000);
    timer.unref();
  }

  flush(): Promise<void> {
    return this.sender.idle();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.sender.close();
    await this.consumer?.disconnect().catch(() => undefined);
  }
}
