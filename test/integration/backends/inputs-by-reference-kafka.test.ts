// Inputs by reference on Kafka + Redis (the real broker and the real Redis, real processes):
// 1 MiB and 16 MiB inputs are stored once in Redis, the submissions-log and assignment records
// carry only their references (each record a few KiB at most), the agent fetches each distinct
// input once over FetchBlob, and the blobs leave Redis when the job finishes.
import { randomFillSync } from "node:crypto";
import { Redis } from "ioredis";
import { Kafka, logLevel } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { topicNames } from "../../../common/kafka-wire.js";
import { histogram } from "../../../kernels/reference/histogram.js";
import { exampleWasm } from "../../helpers/fixtures.js";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";
import { sleep, testServices, uniquePrefix, until } from "../../helpers/services.js";

const MiB = 1024 * 1024;
let c: TestCluster;
let redis: Redis;
const prefix = uniquePrefix("blobref");

beforeAll(async () => {
  const services = testServices();
  redis = new Redis(services.redis);
  c = await startTestCluster("inputs-by-ref-kafka", {
    agents: 1,
    workersPerAgent: 2,
    schedulerArgs: [
      "--heartbeat-interval-ms", "200", "--agent-timeout-ms", "3000", "--drain-grace-ms", "0",
      "--bus", "kafka", "--state", "redis",
      "--kafka-brokers", services.kafka, "--kafka-topic-prefix", prefix,
      "--redis-url", services.redis, "--redis-prefix", prefix,
    ],
  });
}, 90_000);

afterAll(async () => {
  await c?.stop();
  await redis?.quit();
});

function randomHistogramInput(bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  randomFillSync(b);
  b.writeUInt32LE((bytes - 8) / 4, 0);
  b.writeUInt32LE(24, 4);
  return b;
}

async function agentMetric(name: string): Promise<number> {
  const admin = await c.cluster.adminAddress("agent-0");
  // A kept-alive connection the agent's server closed meanwhile fails once: ask again.
  const scrape = () => fetch(`http://${admin}/metrics`).then((r) => r.text());
  const text = await scrape().catch(scrape);
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(" ")[1]) : NaN;
}

/** The size of every record in a topic, read from the beginning until `expected` records came. */
async function recordSizes(topic: string, expected: number): Promise<number[]> {
  const kafka = new Kafka({ clientId: "blobref-test", brokers: [testServices().kafka], logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `${prefix}-inspect-${topic}` });
  const sizes: number[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void sizes.push(message.value?.byteLength ?? 0) });
    await until(`${expected} records in ${topic}`, async () => sizes.length >= expected, 30_000, 100);
    await sleep(1000); // any later records of the topic (they were all written before the job ended)
  } finally {
    await consumer.disconnect();
  }
  return sizes;
}

describe("inputs by reference on Kafka + Redis", () => {
  it("1 MiB and 16 MiB inputs: correct outputs, small records, one fetch per distinct input, blobs dropped when done", async () => {
    const { kernelId } = await c.client.registerKernel(await exampleWasm("histogram"), { name: "histogram" });
    const small = randomHistogramInput(1 * MiB);
    const big = randomHistogramInput(16 * MiB);
    const inputs = [small, big, small, big];
    const { job } = await c.client.run({ kernelId, inputs, timeoutMs: 120_000 });
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    const results = await c.client.getResults(job.jobId);
    expect(results.map((r) => r.taskIndex)).toEqual([0, 1, 2, 3]);
    for (const r of results) expect(Buffer.from(r.output).equals(Buffer.from(histogram.reference(inputs[r.taskIndex]!)))).toBe(true);
    expect(await agentMetric("distx_agent_blob_fetches_total")).toBe(2);
    expect(await agentMetric("distx_agent_blob_fetched_bytes_total")).toBe(17 * MiB);

    // The job's 34 MiB of inputs never entered Kafka: the submission and every assignment record are small.
    const topics = topicNames(prefix);
    const submissions = await recordSizes(topics.submissions, 1);
    const assignments = await recordSizes(topics.assignments, 1);
    console.log(`record bytes: submissions ${submissions.join(", ")}; assignments ${assignments.join(", ")}`);
    for (const size of [...submissions, ...assignments]) expect(size).toBeLessThan(4096);

    // Stored once each in Redis while the job ran; gone with the job.
    await until("the job's blobs to leave Redis", async () => (await redis.keys(`${prefix}:blob:*`)).length === 0, 10_000, 100);
  }, 240_000);
});
