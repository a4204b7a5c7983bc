// The rigs the blob tests share (inputs by reference, shared inputs, outputs by reference, and
// their reliability tests), so each family sets up the same way:
//  - blobRig: a cluster whose scheduler keeps state in Redis (the shared one, or a private one a
//    test may break) under a private prefix, on Kafka with private topics unless told otherwise;
//    with the record sizes of a topic and an agent's counters;
//  - failoverRig: an active scheduler and a standby on Kafka + Redis (private prefix and topics),
//    no agent yet, and a client that knows both;
//  - metricOf: a counter or gauge from a process's /metrics;
//  - rogueAgent (helpers/outputs.ts): another node with a certificate of its own.
import path from "node:path";
import { Redis } from "ioredis";
import { Kafka, logLevel } from "kafkajs";
import { DistributeXClient } from "../../client/index.js";
import { LocalCluster, waitForListening, type ClusterProcess, type LocalClusterOptions } from "../../cli/local-cluster.js";
import { startTestCluster, type TestCluster } from "./cluster.js";
import { freePort, repo, sleep, testServices, uniquePrefix, until } from "./services.js";

/** A counter or gauge (unlabelled) from process `name`'s /metrics ("scheduler", "agent-0", ...). */
export async function metricOf(cluster: LocalCluster, name: string, metric: string): Promise<number> {
  const admin = await cluster.adminAddress(name);
  // A kept-alive connection the process's server closed meanwhile fails once: ask again.
  const scrape = () => fetch(`http://${admin}/metrics`).then((r) => r.text());
  const text = await scrape().catch(scrape);
  const line = text.split("\n").find((l) => l.startsWith(`${metric} `));
  return line ? Number(line.split(" ")[1]) : NaN;
}

export interface BlobRigOptions extends Partial<Pick<LocalClusterOptions, "agents" | "workersPerAgent" | "agentArgs">> {
  /** Names the logs folder and the prefix. */
  name: string;
  /** Kafka bus with private topics (default), or the in-memory queue. */
  kafka?: boolean;
  /** A private Redis (helpers/private-redis.ts); default the shared one. */
  redisUrl?: string;
  /** More scheduler flags; a flag given here wins over the rig's. */
  schedulerArgs?: string[];
}

export interface BlobRig {
  c: TestCluster;
  /** A connection to the rig's Redis; keys are under `prefix`. */
  redis: Redis;
  prefix: string;
  /** The size of every record in a topic, read from the beginning until `expected` records came. */
  recordSizes(topic: string, expected: number): Promise<number[]>;
  /** A counter of agent-0 (or `agent`). */
  agentMetric(metric: string, agent?: string): Promise<number>;
  stop(): Promise<void>;
}

export async function blobRig(o: BlobRigOptions): Promise<BlobRig> {
  const services = testServices();
  const redisUrl = o.redisUrl ?? services.redis;
  const prefix = uniquePrefix(o.name.replace(/[^a-z]/g, "").slice(0, 8));
  const redis = new Redis(redisUrl);
  const kafka = o.kafka ?? true;
  const c = await startTestCluster(`${o.name}-${prefix}`, {
    agents: o.agents ?? 1,
    workersPerAgent: o.workersPerAgent ?? 2,
    ...(o.agentArgs ? { agentArgs: o.agentArgs } : {}),
    schedulerArgs: [
      "--heartbeat-interval-ms", "200", "--agent-timeout-ms", "3000", "--drain-grace-ms", "0",
      ...(kafka ? ["--bus", "kafka", "--kafka-brokers", services.kafka, "--kafka-topic-prefix", prefix] : []),
      "--state", "redis", "--redis-url", redisUrl, "--redis-prefix", prefix,
      ...(o.schedulerArgs ?? []),
    ],
  }).catch(async (err: unknown) => {
    await redis.quit();
    throw err;
  });
  return {
    c,
    redis,
    prefix,
    async recordSizes(topic, expected) {
      const consumer = new Kafka({ clientId: `${prefix}-test`, brokers: [services.kafka], logLevel: logLevel.NOTHING }).consumer({ groupId: `${prefix}-inspect-${topic}` });
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
    },
    agentMetric: (metric, agent = "agent-0") => metricOf(c.cluster, agent, metric),
    async stop() {
      await c.stop();
      await redis.quit();
    },
  };
}

export interface FailoverRig {
  cluster: LocalCluster;
  /** [active, standby] */
  schedulers: ClusterProcess[];
  /** Knows both schedulers; retries for up to a minute. */
  client: DistributeXClient;
  redis: Redis;
  prefix: string;
  /** The job once it is SUCCEEDED, FAILED or CANCELLED. */
  finalJob(jobId: string, timeoutMs: number): ReturnType<DistributeXClient["getJob"]>;
  stop(): Promise<void>;
}

/** An active scheduler and a standby (Kafka + Redis, lease 2 s, agents lost after 3 s); agents are the test's to start. */
export async function failoverRig(name: string): Promise<FailoverRig> {
  const { kafka, redis: redisUrl } = testServices();
  const prefix = uniquePrefix(name.replace(/[^a-z]/g, "").slice(0, 8));
  const ports = [await freePort(), await freePort()];
  const cluster = new LocalCluster({ agents: 0, logs: path.join(repo, "test-output", "logs", `${name}-${prefix}`) });
  const args = [
    "--bus", "kafka", "--state", "redis", "--kafka-brokers", kafka, "--kafka-topic-prefix", prefix, "--redis-url", redisUrl, "--redis-prefix", prefix,
    "--lease-ttl-ms", "2000", "--agent-timeout-ms", "3000", "--drain-grace-ms", "0",
  ];
  const redis = new Redis(redisUrl);
  const schedulers: ClusterProcess[] = [];
  schedulers.push(cluster.spawnProcess("scheduler-a", ["scheduler", "--port", String(ports[0]), ...args]));
  await waitForListening(schedulers[0]!, 30_000);
  schedulers.push(cluster.spawnProcess("scheduler-b", ["scheduler", "--port", String(ports[1]), ...args]));
  const addresses = ports.map((p) => `127.0.0.1:${p}`).join(",");
  cluster.address = addresses;
  const client = new DistributeXClient(addresses, { retry: { deadlineMs: 60_000 } });
  return {
    cluster,
    schedulers,
    client,
    redis,
    prefix,
    finalJob: (jobId, timeoutMs) =>
      until("the job to finish", async () => {
        const j = await client.getJob(jobId);
        return ["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"].includes(j.state) ? j : undefined;
      }, timeoutMs, 300),
    async stop() {
      client.close();
      await cluster.stop(3000);
      await redis.quit();
    },
  };
}
