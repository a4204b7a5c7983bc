// A scheduler taking over consumes in a Kafka consumer group of its own, starting at the offsets
// its predecessor committed (ConsumerGroupHandoff, recorded in Redis). In one shared group the
// new scheduler waited for the old member's session to time out (it was killed or paused) and,
// while that member lived, got only its share of the partitions; a group of its own is assigned
// every partition at once, and nothing its predecessor had committed is handled again.
import kafkajs from "kafkajs";
import { afterAll, describe, expect, it } from "vitest";
import { KafkaAgentBus } from "../../../common/kafka-agent-bus.js";
import type { TaskEventRecord } from "../../../scheduler/backends/bus.js";
import { KafkaBus } from "../../../scheduler/backends/kafka-bus.js";
import { RedisStateStore } from "../../../scheduler/backends/redis-state.js";
import { testServices, uniquePrefix, until } from "../../helpers/services.js";

const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
});

const update = (jobId: string, taskIndex: number) => ({ jobId, taskIndex, attempt: 1, state: "TASK_STATE_SUCCEEDED" as const, output: Buffer.from(`out${taskIndex}`), error: null, runMs: 1, waitMs: 0, backend: "wasm" });

describe("Kafka consumer-group handoff", () => {
  it("the new active scheduler gets every partition at once, from its predecessor's committed offsets", async () => {
    const services = testServices();
    const prefix = uniquePrefix("handoff");
    const open = () => KafkaBus.connect({ brokers: [services.kafka], topicPrefix: prefix, partitions: 2, assignmentPartitions: 2, connectTimeoutMs: 10_000 });
    // The agents' side of the bus (the scheduler's KafkaBus has none), writing the same topics.
    const agentsOf = async (bus: KafkaBus) => {
      const agents = await KafkaAgentBus.open(bus.agentRouting);
      closers.push(() => agents.close());
      return agents;
    };
    const store = await RedisStateStore.connect({ url: services.redis, prefix });
    closers.push(() => store.close());
    const handoff = store.consumerGroupHandoff();

    const seenByA: TaskEventRecord[] = [];
    const a = await open();
    closers.push(() => a.close());
    await a.consume({ submission: async () => undefined, event: async (rec) => void seenByA.push(rec), load: () => undefined }, handoff);
    const groupA = await handoff.previous();
    expect(groupA, "the active scheduler records its group").toMatch(new RegExp(`^${prefix}-scheduler-`));

    // Eight nodes' events (spread over both partitions), handled and committed by A.
    const nodes = Array.from({ length: 8 }, (_, i) => `node-${i}`);
    const agentsA = await agentsOf(a);
    for (const [i, node] of nodes.entries()) agentsA.publishEvents(node, [update("job-before", i)]);
    await until("A handled the first events", async () => seenByA.filter((e) => e.update.jobId === "job-before").length >= 8, 30_000, 20);
    const kafka = new kafkajs.Kafka({ brokers: [services.kafka], logLevel: kafkajs.logLevel.NOTHING });
    const kafkaAdmin = kafka.admin();
    await kafkaAdmin.connect();
    closers.push(() => kafkaAdmin.disconnect());
    const committed = async () =>
      (await kafkaAdmin.fetchOffsets({ groupId: groupA!, topics: [a.topics.events] }))[0]!.partitions.reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
    await until("A committed them", async () => (await committed()) >= 8, 30_000, 50);

    // B takes over while A is still a live member of its own group (as a paused scheduler is).
    const seenByB: TaskEventRecord[] = [];
    const b = await open();
    closers.push(() => b.close());
    await b.consume({ submission: async () => undefined, event: async (rec) => void seenByB.push(rec), load: () => undefined }, handoff);
    const groupB = await handoff.previous();
    expect(groupB).not.toBe(groupA);

    const agentsB = await agentsOf(b);
    for (const [i, node] of nodes.entries()) agentsB.publishEvents(node, [update("job-after", i)]);
    await until("B handled every node's new event", async () => new Set(seenByB.filter((e) => e.update.jobId === "job-after").map((e) => e.nodeId)).size === 8, 30_000, 20);
    expect(seenByB.filter((e) => e.update.jobId === "job-before"), "events A had committed are not handled again").toEqual([]);
    await until("B committed them", async () => (await kafkaAdmin.fetchOffsets({ groupId: groupB!, topics: [b.topics.events] }))[0]!.partitions.reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0) >= 16, 30_000, 50);

    // A leader killed right after it took over from B, before its own group committed anything:
    // it had recorded its new (empty) group with the offsets it started from, B's. The next one
    // must start from those, not replay the logs from the beginning.
    const startOfDead = new Map<string, string>();
    for (const { topic, partitions } of await kafkaAdmin.fetchOffsets({ groupId: groupB!, topics: [b.topics.submissions, b.topics.events, b.topics.load] })) {
      for (const p of partitions) if (Number(p.offset) >= 0) startOfDead.set(`${topic}:${p.partition}`, p.offset);
    }
    await handoff.record(`${prefix}-scheduler-died-at-once`, startOfDead);
    const seenByC: TaskEventRecord[] = [];
    const c = await open();
    closers.push(() => c.close());
    await c.consume({ submission: async () => undefined, event: async (rec) => void seenByC.push(rec), load: () => undefined }, handoff);
    const agentsC = await agentsOf(c);
    for (const [i, node] of nodes.entries()) agentsC.publishEvents(node, [update("job-later", i)]);
    await until("C handled every node's new event", async () => new Set(seenByC.filter((e) => e.update.jobId === "job-later").map((e) => e.nodeId)).size === 8, 30_000, 20);
    expect(seenByC.filter((e) => e.update.jobId !== "job-later").map((e) => e.update.jobId), "events committed before are not handled again").toEqual([]);
  }, 90_000);
});
