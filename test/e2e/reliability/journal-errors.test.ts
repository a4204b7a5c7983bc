// Defect 10 (journal errors): a permanent refusal by the broker (a submission over the topic's
// max.message.bytes) must not read as UNAVAILABLE, or a retrying client loops on it; a broker
// that cannot be reached is UNAVAILABLE and says that a retry is safe.
import path from "node:path";
import { readFile } from "node:fs/promises";
import { status } from "@grpc/grpc-js";
import { Kafka, logLevel } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DistributeXClient, DistributeXError } from "../../../client/index.js";
import { LocalCluster } from "../../../cli/local-cluster.js";
import { backendError } from "../../../scheduler/backends/errors.js";
import { freePort, repo, testServices, uniquePrefix, until } from "../../helpers/private-redis.js";

let cluster: LocalCluster;
let client: DistributeXClient;
let kafka: string;

beforeAll(async () => {
  kafka = testServices().kafka;
  const prefix = uniquePrefix("jerr");
  // The operator's own submissions topic, with a small record limit.
  const admin = new Kafka({ brokers: [kafka], clientId: "jerr", logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  const topic = `${prefix}.submissions`;
  // Right after creation the broker may answer "does not host this topic-partition" for a moment.
  await until("the submissions topic", async () => {
    if (!(await admin.listTopics()).includes(topic)) {
      await admin.createTopics({ topics: [{ topic, numPartitions: 1, configEntries: [{ name: "max.message.bytes", value: "65536" }] }], waitForLeaders: true });
    }
    return (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]!.partitions.every((p) => p.leader >= 0);
  }, 30_000, 200);
  await admin.disconnect();
  cluster = new LocalCluster({
    agents: 0,
    logs: path.join(repo, "test-output", "logs", `journal-errors-${prefix}`),
    schedulerArgs: ["--bus", "kafka", "--kafka-brokers", kafka, "--kafka-topic-prefix", prefix, "--drain-grace-ms", "0"],
  });
  client = new DistributeXClient(await cluster.start(), { retry: false });
}, 90_000);

afterAll(async () => {
  client?.close();
  await cluster?.stop(3000);
});

describe("journal errors", () => {
  it("a submission the broker refuses as too large is RESOURCE_EXHAUSTED and says it is not retryable", async () => {
    const wasm = await readFile(path.join(repo, "build/kernels/saxpy.wasm"));
    const { kernelId } = await client.registerKernel(wasm, { name: "saxpy" });
    // 200 KB of inputs in pieces under inputByRefBytes (64 KiB): they travel inside the journal
    // record (bigger inputs go by reference and would leave it small).
    const inputs = Array.from({ length: 5 }, () => new Uint8Array(40_000));
    const err = await client.submitJob({ kernelId, inputs }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(DistributeXError);
    const e = err as DistributeXError;
    expect(e.codeName, e.message).toBe("RESOURCE_EXHAUSTED");
    expect(e.details).toMatch(/too large/);
    expect(e.details).toMatch(/not retryable/);
    // A small job still goes through.
    expect((await client.submitJob({ kernelId, inputs: [new Uint8Array(64)] })).taskCount).toBe(1);
  }, 60_000);

  it("an unreachable broker is UNAVAILABLE and says a retry is safe", async () => {
    const port = await freePort();
    const producer = new Kafka({ brokers: [`127.0.0.1:${port}`], clientId: "jerr", connectionTimeout: 300, retry: { retries: 0 }, logLevel: logLevel.NOTHING }).producer();
    const err = await producer.connect().then(() => undefined, (e: unknown) => e);
    expect(err).toBeDefined();
    const mapped = backendError("could not write the submission durably", err);
    expect(mapped.code).toBe(status.UNAVAILABLE);
    expect(mapped.message).toMatch(/retry is safe/);
  });
});
