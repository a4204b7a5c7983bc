// Kafka secured: a real KRaft broker with only a SASL_SSL listener (TLS 1.3, SCRAM-SHA-512),
// the StandardAuthorizer denying what no ACL allows, and one principal per role
// (scripts/kafka-secure.sh). The scheduler and agents run a job end to end over it; a wrong
// password, a plaintext client, a client without the CA and the agent principal writing where
// only the scheduler may are all refused; forged submissions records are dropped and counted.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { logLevel, type Kafka } from "kafkajs";
import { Kafka as KafkaClient } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DistributeXClient } from "../../../client/index.js";
import { cliEntry, LocalCluster } from "../../../cli/local-cluster.js";
import type { KafkaSecurity } from "../../../common/backend-security.js";
import { encodeSubmission, kafkaClient, topicNames } from "../../../common/kafka-wire.js";
import { exampleKernels } from "../../../kernels/reference/index.js";
import { startSecureRedis, type SecureRedis } from "../../helpers/secure-redis.js";
import { grantKafkaAcls, type KafkaRole, repo, secureKafka, secureKafkaRoles, uniquePrefix, until } from "../../helpers/services.js";

const saxpy = exampleKernels.saxpy!;
let brokers: string;
let dir: string;
let redis: SecureRedis;
let prefix: string;
let redisPrefix: string;
let cluster: LocalCluster | undefined;
let client: DistributeXClient | undefined;

const role = (user: KafkaRole, password?: string): KafkaSecurity => secureKafkaRoles(dir).security(user, password);

/** A client that fails at once instead of retrying for half a minute. */
const quick = (security: KafkaSecurity): Kafka =>
  new KafkaClient({ clientId: "secure-test", brokers: [brokers], ...security, connectionTimeout: 3000, retry: { retries: 0 }, logLevel: logLevel.NOTHING });

async function connectError(kafka: Kafka): Promise<Error | undefined> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.listTopics();
    return undefined;
  } catch (err) {
    return err as Error;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

beforeAll(async () => {
  ({ brokers, dir } = secureKafka());
  // The topic prefix whose ACLs `kafka-secure.sh up` granted with the broker (granting them for a
  // fresh prefix costs five JVM starts); Redis keys still get a fresh prefix.
  prefix = "distx-test";
  grantKafkaAcls(prefix);
  redisPrefix = uniquePrefix("sec");
  // State over TLS with an ACL user too, so every command a real run sends is checked against it.
  redis = await startSecureRedis(redisPrefix);
}, 300_000);

afterAll(async () => {
  client?.close();
  await cluster?.stop(3000);
  await redis?.stop();
});

describe("Kafka over SASL_SSL with per-role principals", () => {
  it("refuses a wrong password, a plaintext client, a TLS client without SASL, and a client that does not trust the CA", async () => {
    const wrong = await connectError(quick(role("scheduler", "not-the-password")));
    expect(wrong?.name).toBe("KafkaJSSASLAuthenticationError");
    expect(wrong?.message).toMatch(/invalid credentials/);
    expect(await connectError(quick({}))).toBeInstanceOf(Error);
    const tlsOnly = role("scheduler");
    delete tlsOnly.sasl;
    expect(await connectError(quick(tlsOnly))).toBeInstanceOf(Error);
    const noCa = { ...role("scheduler"), ssl: { rejectUnauthorized: true } };
    expect((await connectError(quick(noCa)))?.message).toMatch(/self[- ]signed|unable to (verify|get)/i);
    // The right password works (so the refusals above are about the credentials, not the broker).
    expect(await connectError(quick(role("scheduler")))).toBeUndefined();

    // A scheduler with a wrong password stops at start, names the setting, shows no password.
    const wrongFile = path.join(mkdtempSync(path.join(os.tmpdir(), "distx-pw-")), "pw");
    writeFileSync(wrongFile, "not-the-password-either\n");
    const run = spawnSync(process.execPath, [cliEntry(), "scheduler", "--port", "0", "--bus", "kafka", "--kafka-brokers", brokers,
      "--kafka-sasl-mechanism", "scram-sha-512", "--kafka-username", "distx-scheduler", "--kafka-password-file", wrongFile,
      "--kafka-ca-file", path.join(dir, "ca.pem")], { encoding: "utf8", timeout: 30_000 });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/kafkaBrokers: .*authentication failed/i);
    expect(run.stderr + run.stdout).not.toContain("not-the-password-either");
  }, 60_000);

  it("runs a job end to end, refuses forged submissions records, and keeps the agent principal out of what is not its own", async () => {
    const roles = secureKafkaRoles(dir);
    cluster = new LocalCluster({
      agents: 2,
      workersPerAgent: 1,
      logs: path.join(repo, "test-output", `secure-kafka-${redisPrefix}`),
      schedulerArgs: [
        "--bus", "kafka", "--state", "redis", "--kafka-brokers", brokers, "--kafka-topic-prefix", prefix,
        "--redis-ca-file", redis.caFile, "--redis-prefix", redisPrefix, "--drain-grace-ms", "0",
        ...roles.args("scheduler"),
      ],
      agentArgs: () => ["--no-calibrate", ...roles.args("agent")],
      readyTimeoutMs: 60_000,
      // The password-bearing URL through the environment, as a deployment would (not in ps).
      env: { DISTX_REDIS_URL: redis.url },
    });
    await cluster.start();
    client = new DistributeXClient(cluster.address);
    const topics = topicNames(prefix);

    const wasm = await readFile(path.join(repo, "build/kernels/saxpy.wasm"));
    const { kernelId } = await client.registerKernel(wasm, { name: "saxpy" });

    // Forged records, written with a principal that may write the topic (the scheduler's; the
    // agent's may not, see below): a priority SubmitJob refuses, an unknown kernel, garbage.
    await expect(client.submitJob({ kernelId, inputs: [Buffer.alloc(16)], priority: 1000 })).rejects.toThrow(/priority must be between -100 and 100/);
    const forgedId = "job-00000000-0000-4000-8000-000000000001";
    const forged = (over: Record<string, unknown>, jobId = forgedId) =>
      encodeSubmission({ jobId, submittedAtMs: Date.now(), request: { kernelId, tasks: [{ data: Buffer.alloc(16) }], priority: 0, ...over } });
    const writer = kafkaClient([brokers], "forger", role("scheduler")).producer({ allowAutoTopicCreation: false });
    await writer.connect();
    await writer.send({
      topic: topics.submissions,
      acks: -1,
      messages: [
        { key: "a", value: forged({ priority: 1000 }) },
        { key: "b", value: forged({ kernelId: "f".repeat(64) }, "job-00000000-0000-4000-8000-000000000002") },
        { key: "c", value: forged({}, "not-a-job-id") },
        { key: "d", value: Buffer.from("\xff\xff\xff\xff garbage") },
      ],
    });
    await writer.disconnect();
    const admin = `http://${await cluster.adminAddress("scheduler")}`;
    const metric = async (reason: string, topic = "submissions") => {
      const text = await (await fetch(`${admin}/metrics`)).text();
      return Number(new RegExp(`^distx_rejected_records_total\\{topic="${topic}",reason="${reason}"\\} (\\d+)`, "m").exec(text)?.[1] ?? 0);
    };
    await until("the forged records to be refused", async () => (await metric("invalid_argument")) >= 2 && (await metric("not_found")) >= 1 && (await metric("undecodable")) >= 1, 30_000);
    await expect(client.getJob(forgedId)).rejects.toThrow(/NOT_FOUND/);
    expect((await client.listJobs()).map((j) => j.jobId)).not.toContain(forgedId);

    // A real job runs end to end: assignments to the agents and their results all over SASL_SSL.
    const inputs = saxpy.makeTasks({ tasks: 12, size: 12 * 16, seed: 5 });
    const { jobId } = await client.submitJob({ kernelId, inputs, skipResultCache: true });
    await until("the job to finish", async () => {
      const job = await client!.getJob(jobId);
      return job.state !== "JOB_STATE_PENDING" && job.state !== "JOB_STATE_RUNNING" ? job : undefined;
    }, 120_000, 300);
    const results = await client.getResults(jobId);
    expect(results).toHaveLength(inputs.length);
    for (const r of results) {
      expect(r.state).toBe("TASK_STATE_SUCCEEDED");
      expect(saxpy.check(inputs[r.taskIndex]!, r.output).ok).toBe(true);
    }
    expect(new Set(results.map((r) => r.nodeId)).size).toBeGreaterThanOrEqual(1);

    // A valid record that no live scheduler recorded (its scheduler died after the append) is
    // still adopted and run: the checks refuse only what SubmitJob would refuse.
    const orphanId = "job-00000000-0000-4000-8000-000000000003";
    const orphanInputs = saxpy.makeTasks({ tasks: 2, size: 32, seed: 9 });
    const orphanWriter = kafkaClient([brokers], "orphan", role("scheduler")).producer({ allowAutoTopicCreation: false });
    await orphanWriter.connect();
    await orphanWriter.send({ topic: topics.submissions, acks: -1, messages: [{ key: orphanId, value: encodeSubmission({ jobId: orphanId, submittedAtMs: Date.now(), request: { kernelId, tasks: orphanInputs.map((data) => ({ data })), priority: 5, skipResultCache: true } }) }] });
    await orphanWriter.disconnect();
    // On a timeout the message says how far it got (once seen failing in CI, not reproduced):
    // never recorded (with the rejected-record counters), or recorded and in which state.
    await until("the orphaned submission to be adopted and run", async () => {
      const job = await client!.getJob(orphanId).catch(async (err: Error) => {
        const rejected = (await (await fetch(`${admin}/metrics`)).text()).split("\n").filter((l) => l.startsWith("distx_rejected_records_total"));
        throw new Error(`not recorded (${err.message}); ${rejected.join("; ") || "no rejected records"}`);
      });
      if (job.state === "JOB_STATE_SUCCEEDED") return job;
      throw new Error(`recorded, but ${job.state}`);
    }, 60_000, 300);

    // The agent principal: may write task events, may not write submissions or assignments,
    // may not read submissions.
    const agent = kafkaClient([brokers], "agent-probe", role("agent"));
    const producer = agent.producer({ allowAutoTopicCreation: false, retry: { retries: 0 } });
    await producer.connect();
    try {
      await producer.send({ topic: topics.events, acks: -1, messages: [{ key: "n", value: Buffer.alloc(0) }] });
      // It may write load samples: one without the node's signature (test/e2e/security/kafka-node-identity.test.ts)
      // is dropped before it is read and counted, and harms nothing (malformed ones: test/unit/kafka-records.test.ts).
      const nodeId = (await client.listNodes())[0]!.nodeId;
      await producer.send({ topic: topics.load, acks: -1, messages: [{ key: nodeId, value: Buffer.from(JSON.stringify({ nodeId, draining: false, load: { cpuUtilization: "all of it" } })) }] });
      await until("the unsigned load sample to be refused", async () => (await metric("unsigned", "node-load")) >= 1, 30_000);
      expect((await client.listNodes()).every((n) => n.state === "NODE_STATE_READY")).toBe(true);
      for (const topic of [topics.submissions, topics.assignments]) {
        const denied = await producer.send({ topic, acks: -1, messages: [{ key: "x", value: forged({}) }] }).then(() => undefined, (err: Error) => err);
        expect(denied?.message, topic).toMatch(/not authorized/i);
      }
    } finally {
      await producer.disconnect();
    }
    const agentAdmin = agent.admin();
    await agentAdmin.connect();
    try {
      const denied = await agentAdmin.fetchTopicOffsets(topics.submissions).then(() => undefined, (err: Error) => err);
      expect(denied?.message).toMatch(/not authorized|does not host|unknown topic/i);
      // Creating topics is the scheduler's job only.
      const created = await agentAdmin.createTopics({ topics: [{ topic: `${prefix}.agent-made` }] }).then(() => undefined, (err: Error & { errors?: { type?: string }[] }) => err);
      expect(created?.errors?.map((e) => e.type)).toEqual(["TOPIC_AUTHORIZATION_FAILED"]);
    } finally {
      await agentAdmin.disconnect();
    }
  }, 240_000);
});

// Kept out of the secured describe: reading a password file the tests rely on must not print it.
it("never shows the password in a config error", async () => {
  const { loadConfig, schedulerConfigSchema } = await import("../../../common/config.js");
  const secret = readFileSync(path.join(dir, "scheduler.password"), "utf8").trim();
  let message = "";
  try {
    // Both values are invalid (too long; not a redis:// URL), so both fields are reported.
    loadConfig(schedulerConfigSchema, { section: "scheduler", env: {}, flags: { kafkaPassword: secret.repeat(40), redisUrl: `http://u:${secret}@h`, port: -1 } });
  } catch (err) {
    message = (err as Error).message;
  }
  expect(message).toMatch(/port/);
  expect(message).toMatch(/kafkaPassword: .*\(got \(hidden\)/);
  expect(message).toMatch(/redisUrl: .*\(got \(hidden\)/);
  expect(message).not.toContain(secret);
});
