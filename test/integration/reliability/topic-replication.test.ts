// Defect 10 (replication): the topics the scheduler creates get an explicit replication factor
// (default min(3, brokers)) and min.insync.replicas (a majority), never the broker's default; a
// single replica is warned about, and a factor above the broker count is refused at start.
import { ConfigResourceTypes, Kafka, logLevel } from "kafkajs";
import { afterAll, describe, expect, it } from "vitest";
import { KafkaBus } from "../../../scheduler/backends/kafka-bus.js";
import { replicationFor } from "../../../scheduler/backends/kafka-topics.js";
import { testServices, uniquePrefix } from "../../helpers/private-redis.js";

const opened: KafkaBus[] = [];
afterAll(async () => {
  for (const b of opened) await b.close();
});

describe("topic replication", () => {
  it("min(3, brokers) replicas and a majority in sync", () => {
    expect(replicationFor(0, 1)).toEqual({ replicationFactor: 1, minInsyncReplicas: 1 });
    expect(replicationFor(0, 2)).toEqual({ replicationFactor: 2, minInsyncReplicas: 1 });
    expect(replicationFor(0, 5)).toEqual({ replicationFactor: 3, minInsyncReplicas: 2 });
    expect(() => replicationFor(3, 1)).toThrow(/above the 1 broker/);
  });

  it("creates topics with an explicit factor and min.insync.replicas, and warns about a single replica", async () => {
    const { kafka } = testServices();
    const prefix = uniquePrefix("rf");
    const warnings: string[] = [];
    const bus = await KafkaBus.connect({
      brokers: [kafka], topicPrefix: prefix, partitions: 1, assignmentPartitions: 1, connectTimeoutMs: 10_000,
      onWarning: (m) => warnings.push(m),
    });
    opened.push(bus);
    expect(warnings.join("\n")).toMatch(/single replica/);
    const admin = new Kafka({ brokers: [kafka], clientId: "rf", logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      const configs = await admin.describeConfigs({
        resources: [bus.topics.submissions, bus.topics.events, bus.topics.assignments].map((name) => ({ type: ConfigResourceTypes.TOPIC, name, configNames: ["min.insync.replicas"] })),
        includeSynonyms: false,
      });
      for (const r of configs.resources) {
        const e = r.configEntries.find((c) => c.configName === "min.insync.replicas")!;
        // Set on the topic itself, not inherited from the broker.
        expect(e.isDefault, r.resourceName).toBe(false);
        expect(e.configValue).toBe("1");
      }
      const meta = await admin.fetchTopicMetadata({ topics: [bus.topics.submissions] });
      expect(meta.topics[0]!.partitions[0]!.replicas.length).toBe(1);
    } finally {
      await admin.disconnect();
    }
    await expect(KafkaBus.connect({ brokers: [kafka], topicPrefix: uniquePrefix("rf"), partitions: 1, assignmentPartitions: 1, connectTimeoutMs: 10_000, replicationFactor: 3 })).rejects.toThrow(/kafkaReplicationFactor 3 is above the 1 broker/);
  }, 60_000);
});
