// Recycled output buffers and the Kafka path, on the real broker: the agent's outbox hands its
// updates to the Kafka link, which keeps them until the broker acknowledges them, because a
// record the broker refuses (over the task-events topic's max.message.bytes) is encoded again
// from them, one update per record. The outputs' buffers (from a real worker pool that poisons
// what is given back) must therefore go back only on the acknowledgement: the records that are
// sent again, and stored, carry the original bytes, never poison.
import { randomBytes } from "node:crypto";
import { Kafka, logLevel } from "kafkajs";
import { afterAll, describe, expect, it } from "vitest";
import { WorkerPool } from "../../../agent/pool/worker-pool.js";
import { UpdateOutbox } from "../../../agent/update-outbox.js";
import { compileWasmKernel } from "../../../common/kernel-abi.js";
import { KafkaAgentLink } from "../../../common/kafka-agent-link.js";
import { decodeUpdates } from "../../../common/kafka-wire.js";
import { fixtureKernel } from "../../helpers/fixtures.js";
import { testServices, uniquePrefix, until } from "../../helpers/private-redis.js";

const KiB = 1024;
const POISON = 0xdb;
const cleanup: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
});

describe("recycled outputs on the Kafka path", () => {
  it("gives a buffer back only once the broker has its update, so a refused record is sent again with the original bytes", async () => {
    const { kafka } = testServices();
    const prefix = uniquePrefix("outrecycle");
    const route = { brokers: [kafka], assignmentsTopic: `${prefix}.assignments`, assignmentsPartition: 0, eventsTopic: `${prefix}.task-events`, loadTopic: `${prefix}.load` };
    const client = new Kafka({ brokers: [kafka], clientId: prefix, logLevel: logLevel.NOTHING });
    const admin = client.admin();
    await admin.connect();
    // 200 KiB per record: four 100 KiB results of one turn (one record) are refused, each alone fits.
    await admin.createTopics({
      topics: [
        { topic: route.assignmentsTopic, numPartitions: 1 },
        { topic: route.eventsTopic, numPartitions: 1, configEntries: [{ name: "max.message.bytes", value: String(200 * KiB) }] },
        { topic: route.loadTopic, numPartitions: 1 },
      ],
      waitForLeaders: true,
    });
    await admin.disconnect();

    const pool = new WorkerPool({ size: 1, outputPool: { maxTotalBytes: 8 * 1024 * KiB, poison: POISON } });
    cleanup.push(() => pool.close());
    const echo = await compileWasmKernel(await fixtureKernel("echo"));
    const inputs = Array.from({ length: 4 }, () => {
      const b = new Uint8Array(4 + 100 * KiB);
      b.set(randomBytes(100 * KiB), 4);
      return b;
    });
    const wants = inputs.map((x) => Buffer.from(x)); // inputs are transferred: keep a copy
    const results = await Promise.all(inputs.map((input) => pool.run({ kernelId: "echo", module: echo, input, timeoutMs: 10_000, memoryLimitBytes: 16 * 1024 * KiB }).promise));

    let outbox: UpdateOutbox | undefined;
    const delivered: number[] = [];
    const link = await KafkaAgentLink.open(route, `node-${prefix}`, { assign: () => undefined, cancel: () => undefined }, undefined, 20_000, {}, {
      delivered: (u) => {
        delivered.push(...u.map((x) => x.taskIndex ?? -1));
        outbox!.delivered(u);
      },
      replaced: (u, instead) => outbox!.replaced(u, instead),
    });
    cleanup.push(() => link.close());
    outbox = new UpdateOutbox((items) => {
      link.sendUpdates(items);
      return true;
    });
    const released: number[] = [];
    // One turn: the four updates go as one record (RECORD_BUDGET_BYTES allows it), which the topic refuses.
    results.forEach((r, taskIndex) => {
      expect(r.release).toBeTypeOf("function");
      outbox!.send({}, { jobId: prefix, taskIndex, attempt: 1, state: "TASK_STATE_SUCCEEDED", output: r.output }, undefined, () => {
        // Given back only after the broker acknowledged this very update.
        expect(delivered).toContain(taskIndex);
        released.push(taskIndex);
        r.release!();
      });
    });
    await until("every update acknowledged and its buffer given back", async () => released.length === 4, 30_000, 50);
    // Given back and poisoned (what a late reader would see)...
    for (const r of results) expect(r.output.every((b) => b === POISON)).toBe(true);

    // ...while what the broker stored, sent again after the refusal, is the original bytes, one update per record.
    const stored: { perRecord: number; taskIndex: number; output: Buffer }[] = [];
    const consumer = client.consumer({ groupId: `${prefix}-reader` });
    cleanup.push(() => consumer.disconnect());
    await consumer.connect();
    await consumer.subscribe({ topic: route.eventsTopic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const updates = decodeUpdates(message.value!);
        for (const u of updates) stored.push({ perRecord: updates.length, taskIndex: u.taskIndex, output: Buffer.from(u.output) });
      },
    });
    await until("the stored updates", async () => stored.length >= 4, 30_000, 100);
    expect(stored.map((s) => s.taskIndex).sort()).toEqual([0, 1, 2, 3]);
    for (const s of stored) {
      expect(s.perRecord).toBe(1);
      expect(s.output.equals(wants[s.taskIndex]!)).toBe(true);
    }
  }, 90_000);
});
