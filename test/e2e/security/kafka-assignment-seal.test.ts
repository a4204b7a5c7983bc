// Assignment confidentiality on Kafka: every agent reads with the same Kafka principal, and ACLs
// are per topic, so the scheduler seals each assignments record to its node's certificate key
// (common/record-seal.ts). A real secure cluster (mTLS scheduler, SASL_SSL broker with per-role
// ACLs, one real agent A with short-lived node certificates so that it renews within the test):
// another holder of the agent password reading A's partition gets only ciphertext; A's jobs
// complete; unsealed and forged records put on A's partition are dropped and counted by A, never
// run; and renewals in the middle of a stream of assignments lose none of them.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { Consumer, IHeaders, Producer } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DistributeXClient } from "../../../client/index.js";
import { LocalCluster } from "../../../cli/local-cluster.js";
import type { KafkaSecurity } from "../../../common/backend-security.js";
import { encodeAssignments, kafkaClient, topicNames } from "../../../common/kafka-wire.js";
import { EPHEMERAL_KEY_HEADER, seal, SEAL_SERIAL_HEADER, sealRecipient } from "../../../common/record-seal.js";
import { repoRoot } from "../../../common/paths.js";
import { createCa, createCsr, signNodeCsr } from "../../../scheduler/auth/pki.js";
import { fixtureKernel } from "../../helpers/fixtures.js";
import { grantKafkaAcls, type KafkaRole, secureKafka, secureKafkaRoles, until } from "../../helpers/services.js";

/** This file's own topics on the shared secure broker. */
const PREFIX = "distx-seal";
/**
 * Node certificates of this lifetime are renewed at 2/3 of it, counted from their notBefore, which
 * is 60 s back (clock skew): 10 s after each is issued.
 */
const CERT_LIFETIME_MS = 45_000;
const RENEW_EVERY_MS = 10_000;

let brokers: string;
let secrets: string;
let cluster: LocalCluster;
let client: DistributeXClient;
let nodeA: string;
let kernelId: string;
let spy: Consumer;
let injector: Producer;

/** What the spy (another agent principal) read on the assignments topic for node A. */
interface Seen {
  partition: number;
  offset: number;
  value: Buffer;
  headers: IHeaders;
}
const seenForA: Seen[] = [];

const role = (user: KafkaRole): KafkaSecurity => secureKafkaRoles(secrets).security(user);

beforeAll(async () => {
  ({ brokers, dir: secrets } = secureKafka());
  grantKafkaAcls(PREFIX);
  const roles = secureKafkaRoles(secrets);
  cluster = new LocalCluster({
    agents: 1,
    workersPerAgent: 2,
    logs: path.join(repoRoot(), "test-output", "logs", `kafka-assignment-seal-${Date.now()}`),
    env: { DISTX_NODE_CERT_LIFETIME_MS: String(CERT_LIFETIME_MS) },
    schedulerArgs: [
      "--bus", "kafka", "--kafka-brokers", brokers, "--kafka-topic-prefix", PREFIX, "--drain-grace-ms", "0",
      ...roles.args("scheduler"),
    ],
    agentArgs: () => ["--no-calibrate", "--gpu", "off", ...roles.args("agent")],
    readyTimeoutMs: 90_000,
  });
  await cluster.start();
  client = new DistributeXClient(cluster.address);
  nodeA = (await client.listNodes())[0]!.nodeId;
  ({ kernelId } = await client.registerKernel(await fixtureKernel("echo"), { name: "echo" }));
  // Another agent's principal (the same Kafka password every agent holds) reading the whole
  // assignments topic in a consumer group of its own: the ACLs let it.
  spy = kafkaClient([brokers], "spy", role("agent")).consumer({ groupId: `distx-agent-spy-${Date.now()}`, maxWaitTimeInMs: 50 });
  await spy.connect();
  await spy.subscribe({ topic: topicNames(PREFIX).assignments, fromBeginning: true });
  await spy.run({
    eachMessage: async ({ partition, message }) => {
      if (message.key?.toString() === nodeA && message.value) seenForA.push({ partition, offset: Number(message.offset), value: message.value, headers: message.headers ?? {} });
    },
  });
  // Only the scheduler's principal may write assignments: what a forger would need to hold.
  injector = kafkaClient([brokers], "injector", role("scheduler")).producer({ allowAutoTopicCreation: false });
  await injector.connect();
}, 300_000);

afterAll(async () => {
  await spy?.disconnect();
  await injector?.disconnect();
  client?.close();
  await cluster?.stop(3000);
});

async function dropped(reason: string): Promise<number> {
  const text = await (await fetch(`http://${await cluster.adminAddress("agent-0")}/metrics`)).text();
  return Number(new RegExp(`^distx_agent_dropped_assignment_records_total\\{reason="${reason}"\\} (\\d+)`, "m").exec(text)?.[1] ?? 0);
}

const REASONS = ["unsealed", "bad_header", "other_key", "bad_ciphertext"];
const droppedNow = async () => Object.fromEntries(await Promise.all(REASONS.map(async (r) => [r, await dropped(r)] as const)));
const header = (h: IHeaders, name: string): Buffer | undefined => {
  const v = h[name];
  return v === undefined || Array.isArray(v) ? undefined : Buffer.from(v as Buffer | string);
};

/** Runs one job of `n` echo tasks on A and checks every result came from A on the first attempt. */
async function runJob(marker: string, n: number): Promise<Buffer[]> {
  const inputs = Array.from({ length: n }, (_, i) => Buffer.from(`${marker}-${i}-${"x".repeat(24)}`));
  const { jobId } = await client.submitJob({ kernelId, inputs });
  expect((await client.waitForJob(jobId)).state).toBe("JOB_STATE_SUCCEEDED");
  const results = await client.getResults(jobId);
  expect(results.map((r) => Buffer.from(r.output).toString())).toEqual(inputs.map((b) => b.toString()));
  for (const r of results) expect([r.nodeId, r.attempt]).toEqual([nodeA, 1]);
  return inputs;
}

describe("assignments on Kafka are sealed to their node", () => {
  it("A's jobs complete, and another agent principal reading A's partition gets only ciphertext", async () => {
    const inputs = await runJob("TOPSECRET-A", 8);
    await until("the spy to read A's assignments", async () => seenForA.length > 0, 30_000);
    for (const rec of seenForA) {
      expect(header(rec.headers, EPHEMERAL_KEY_HEADER)).toHaveLength(65);
      expect(header(rec.headers, SEAL_SERIAL_HEADER)?.toString()).toMatch(/^[0-9a-f]+$/);
      for (const input of inputs) expect(rec.value.includes(input), "an input's bytes in a record another agent read").toBe(false);
      expect(rec.value.includes(Buffer.from("TOPSECRET"))).toBe(false);
      expect(rec.value.includes(Buffer.from(kernelId, "hex"))).toBe(false);
    }
    for (const r of REASONS) expect(await dropped(r), r).toBe(0);
  }, 180_000);

  it("unsealed and forged records on A's partition are dropped and counted, never run", async () => {
    const { partition } = seenForA.at(-1)!;
    const serial = header(seenForA.at(-1)!.headers, SEAL_SERIAL_HEADER)!.toString();
    const topic = topicNames(PREFIX).assignments;
    const before = await droppedNow();
    const fake = encodeAssignments([{ jobId: "j-forged", taskIndex: 0, attempt: 1, kernelId, kind: "KERNEL_KIND_WASM", input: Buffer.from("FORGED-INPUT"), timeoutMs: 5000, memoryLimitBytes: "0", sharedInputs: [] }]);
    // 1. In clear, as every record was before sealing: a secure agent never reads it (no downgrade).
    // 2. Sealed to a key the forger made (a certificate for A's node id from its own CA), naming A's serial.
    const rogueCa = await createCa("rogue");
    const csr = await createCsr();
    const rogue = sealRecipient((await signNodeCsr(rogueCa.certPem, rogueCa.keyPem, csr.csrPem, nodeA)).certPem);
    const forged = seal(topic, nodeA, fake, { point: rogue.point, serial });
    // 3. Half the headers, and an ephemeral key that is not a point.
    await injector.send({
      topic,
      acks: -1,
      messages: [
        { partition, key: nodeA, value: fake },
        { partition, key: nodeA, value: forged.value, headers: forged.headers },
        { partition, key: nodeA, value: forged.value, headers: { [SEAL_SERIAL_HEADER]: serial } },
      ],
    });
    await until("A to drop the injected records", async () => {
      const now = await droppedNow();
      return now.unsealed! > before.unsealed! && now.bad_ciphertext! > before.bad_ciphertext! && now.bad_header! > before.bad_header!;
    }, 30_000);
    const after = await droppedNow();
    expect(after).toEqual({ ...before, unsealed: before.unsealed! + 1, bad_ciphertext: before.bad_ciphertext! + 1, bad_header: before.bad_header! + 1 });
    // The agent says what happened: a skipped record, not a Kafka fault being retried.
    const agentLog = readdirSync(cluster.logDir!).filter((f) => f.startsWith("agent-")).map((f) => readFileSync(path.join(cluster.logDir!, f), "utf8")).join("");
    expect(agentLog).toMatch(/"event":"assignment_record_dropped"[^\n]*dropped \(unsealed\)/);
    expect(agentLog).not.toMatch(/"event":"kafka_error"[^\n]*dropped/);
    // None of them became a task: A still works, and nothing reported for the forged job broke it.
    await runJob("after-forgery", 4);
  }, 180_000);

  it("renewals in the middle of a stream of assignments lose none of them", async () => {
    const before = await droppedNow();
    const from = seenForA.length;
    // Jobs back to back until the records for A are sealed to a second certificate (a renewal
    // falls inside the stream; one comes every RENEW_EVERY_MS) and one whole round after it.
    const serialsSince = () => new Set(seenForA.slice(from).map((r) => header(r.headers, SEAL_SERIAL_HEADER)!.toString()));
    const deadline = Date.now() + 12 * RENEW_EVERY_MS;
    let jobs = 0;
    let after = 0;
    while (after < 1 && Date.now() < deadline) {
      if (serialsSince().size >= 2) after++;
      await Promise.all([runJob(`stream-${jobs}`, 6), runJob(`stream-${jobs}b`, 3)]);
      jobs++;
    }
    expect(serialsSince().size, "records sealed to more than one certificate during the stream").toBeGreaterThanOrEqual(2);
    expect(after).toBe(1);
    // Every assignment opened: nothing for A was dropped for want of the right key.
    expect(await droppedNow()).toEqual(before);
  }, 180_000);
});
