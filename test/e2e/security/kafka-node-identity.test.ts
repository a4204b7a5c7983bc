// Node identity on Kafka: every agent writes task events with the same Kafka principal, so the
// node id a record claims must be proven by the node's signature (common/record-signature.ts).
// A real secure cluster (mTLS scheduler, SASL_SSL broker with per-role ACLs, one real agent) and
// node identities joined as an attacker holding a join token would join: forged, unsigned,
// badly signed, foreign-CA and removed-node records written with the agent principal are refused
// before decoding and counted; a genuinely signed record is accepted.
import { readFileSync } from "node:fs";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import type { Producer } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageVersion } from "../../../common/version.js";
import { DistributeXClient } from "../../../client/index.js";
import { LocalCluster } from "../../../cli/local-cluster.js";
import type { KafkaSecurity } from "../../../common/backend-security.js";
import { encodeUpdates, kafkaClient, topicNames } from "../../../common/kafka-wire.js";
import { CHANNEL_OPTIONS, v1 } from "../../../common/proto.js";
import { recordSigner, type SigningIdentity } from "../../../common/record-signature.js";
import { repoRoot } from "../../../common/paths.js";
import { secureChannel, type TlsMaterial } from "../../../common/secure-channel.js";
import type { AgentServiceGrpcClient, TaskUpdateIn } from "../../../common/types.js";
import { createCa, createCsr, signNodeCsr } from "../../../scheduler/auth/pki.js";
import { fixtureKernel } from "../../helpers/fixtures.js";
import { grantKafkaAcls, type KafkaRole, secureKafka, secureKafkaRoles, until } from "../../helpers/services.js";

/** This file's own topics on the shared secure broker (ACLs granted once, by kafka-secure.sh). */
const PREFIX = "distx-nodeid";

let brokers: string;
let secrets: string;
let cluster: LocalCluster;
let client: DistributeXClient;
let caPem: Buffer;
let producer: Producer;

const role = (user: KafkaRole): KafkaSecurity => secureKafkaRoles(secrets).security(user);

beforeAll(async () => {
  ({ brokers, dir: secrets } = secureKafka());
  grantKafkaAcls(PREFIX);
  const roles = secureKafkaRoles(secrets);
  cluster = new LocalCluster({
    agents: 1,
    workersPerAgent: 1,
    logs: path.join(repoRoot(), "test-output", "logs", `kafka-node-identity-${Date.now()}`),
    schedulerArgs: [
      "--bus", "kafka", "--kafka-brokers", brokers, "--kafka-topic-prefix", PREFIX, "--drain-grace-ms", "0",
      // The identities this test joins hold a session but send no heartbeats.
      "--agent-timeout-ms", "120000",
      ...roles.args("scheduler"),
    ],
    agentArgs: () => ["--no-calibrate", "--gpu", "off", "--labels", "role=real", ...roles.args("agent")],
    readyTimeoutMs: 90_000,
  });
  await cluster.start();
  client = new DistributeXClient(cluster.address);
  caPem = readFileSync(cluster.credentialFiles().caFile);
  // What an agent principal may do: write task events (the broker's ACLs allow it).
  producer = kafkaClient([brokers], "forger", role("agent")).producer({ allowAutoTopicCreation: false });
  await producer.connect();
}, 300_000);

afterAll(async () => {
  await producer?.disconnect();
  client?.close();
  await cluster?.stop(3000);
});

function agentStub(material: TlsMaterial): AgentServiceGrpcClient {
  const tls = secureChannel(cluster.address, material);
  return new (v1().AgentService)(cluster.address, tls.credentials, { ...CHANNEL_OPTIONS, ...tls.options }) as unknown as AgentServiceGrpcClient;
}

const unary = <Res>(fn: (cb: (err: grpc.ServiceError | null, res?: Res) => void) => void): Promise<Res> =>
  new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res as Res))));

interface Joined extends SigningIdentity {
  nodeId: string;
  stub: AgentServiceGrpcClient;
}

/** A node identity from a join token, as an attacker holding one (or a real agent) gets it. */
async function joinNode(): Promise<Joined> {
  const { token } = await client.createJoinToken({ uses: 1 });
  const { csrPem, keyPem } = await createCsr();
  const boot = agentStub({ ca: caPem });
  const joined = await unary<{ nodeId: string; certificatePem: string }>((cb) => boot.Join({ joinToken: token, csrPem }, cb));
  boot.close();
  const stub = agentStub({ ca: caPem, key: Buffer.from(keyPem), cert: Buffer.from(joined.certificatePem) });
  return { nodeId: joined.nodeId, keyPem, certPem: joined.certificatePem, stub };
}

/** Registers the node and opens its session, so the scheduler places tasks on it (over Kafka). */
async function attach(node: Joined, labels: Record<string, string>): Promise<grpc.ClientDuplexStream<object, object>> {
  await unary((cb) =>
    node.stub.Register(
      {
        profile: { hostname: "joined", platform: "linux", arch: "x64", cpu: { model: "x", logicalCores: 8, physicalCores: 8, simd: [] }, memoryBytes: String(8 << 30), gpus: [], workers: 8, labels, kernelKinds: ["KERNEL_KIND_WASM"] },
        agentVersion: packageVersion(),
      },
      cb,
    ),
  );
  const session = node.stub.Session() as unknown as grpc.ClientDuplexStream<object, object>;
  session.on("data", () => undefined);
  session.on("error", () => undefined);
  session.write({ hello: { nodeId: node.nodeId } });
  return session;
}

async function metrics(): Promise<string> {
  return (await fetch(`http://${await cluster.adminAddress("scheduler")}/metrics`)).text();
}

async function rejected(reason: string): Promise<number> {
  return Number(new RegExp(`^distx_rejected_updates_total\\{reason="${reason}"\\} (\\d+)`, "m").exec(await metrics())?.[1] ?? 0);
}

/** Load samples refused, by reason (distx_rejected_records_total{topic="node-load"}). */
async function rejectedLoad(reason: string): Promise<number> {
  return Number(new RegExp(`^distx_rejected_records_total\\{topic="node-load",reason="${reason}"\\} (\\d+)`, "m").exec(await metrics())?.[1] ?? 0);
}

const REASONS = ["unsigned", "bad_signature", "unknown_signer", "removed_node", "claims_other_node"];

const succeeded = (jobId: string, taskIndex: number, output: string): TaskUpdateIn => ({ jobId, taskIndex, attempt: 1, state: "TASK_STATE_SUCCEEDED", output: Buffer.from(output), runMs: 1 });

describe("task events over Kafka prove their node", () => {
  it("a genuine agent's signed results are accepted (a job runs end to end over Kafka)", async () => {
    const { kernelId } = await client.registerKernel(await fixtureKernel("echo"), { name: "echo" });
    const inputs = Array.from({ length: 4 }, (_, i) => Buffer.from([i, i + 1, i + 2, i + 3]));
    const { jobId } = await client.submitJob({ kernelId, inputs, resources: { nodeSelector: { role: "real" } } });
    expect((await client.waitForJob(jobId)).state).toBe("JOB_STATE_SUCCEEDED");
    const results = await client.getResults(jobId);
    expect(results.map((r) => Buffer.from(r.output).toString("hex"))).toEqual(inputs.map((b) => b.toString("hex")));
    // Its load samples (one per heartbeat, signed too) are taken as well.
    for (const reason of REASONS) {
      expect(await rejected(reason), reason).toBe(0);
      expect(await rejectedLoad(reason), reason).toBe(0);
    }
  }, 120_000);

  it("refuses forged, unsigned, badly signed, foreign and removed-node records, and accepts a genuine one", async () => {
    const { kernelId } = await client.registerKernel(await fixtureKernel("echo"), { name: "echo" });
    const victim = await joinNode();
    const attacker = await joinNode();
    const session = await attach(victim, { role: "victim" });
    const { jobId } = await client.submitJob({ kernelId, inputs: Array.from({ length: 6 }, () => Buffer.alloc(4)), resources: { nodeSelector: { role: "victim" } } });
    // Every task is now the victim's, attempt 1 (its assignments wait on its Kafka partition).
    await until("the tasks to be assigned to the victim node", async () => (await client.getJob(jobId)).counts?.assigned === 6, 30_000);

    const events = topicNames(PREFIX).events;
    const before = Object.fromEntries(await Promise.all(REASONS.map(async (r) => [r, await rejected(r)] as const)));
    const send = (key: string, value: Buffer, headers?: Record<string, Buffer>) => producer.send({ topic: events, acks: -1, messages: [{ key, value, ...(headers ? { headers } : {}) }] });

    // 1. Unsigned, claiming the victim: what any holder of the agent password could write.
    await send(victim.nodeId, encodeUpdates([succeeded(jobId, 0, "unsigned")]));
    // 2. Signed by the attacker's own (valid) node certificate, claiming the victim.
    const forged = encodeUpdates([succeeded(jobId, 1, "forged")]);
    await send(victim.nodeId, forged, recordSigner(() => attacker).headers(events, victim.nodeId, forged));
    // Load samples claim a node too (a forged one could steer placement): unsigned, and signed by
    // the attacker but naming the victim inside.
    const loadTopic = topicNames(PREFIX).load;
    const sample = (nodeId: string) => Buffer.from(JSON.stringify({ nodeId, draining: false, load: { cpuUtilization: 0 } }));
    const [unsignedLoad, otherLoad] = [await rejectedLoad("unsigned"), await rejectedLoad("claims_other_node")];
    await producer.send({ topic: loadTopic, acks: -1, messages: [{ key: victim.nodeId, value: sample(victim.nodeId) }] });
    const inside = sample(victim.nodeId);
    await producer.send({ topic: loadTopic, acks: -1, messages: [{ key: attacker.nodeId, value: inside, headers: recordSigner(() => attacker).headers(loadTopic, attacker.nodeId, inside) }] });
    await until("the forged load samples to be refused", async () => (await rejectedLoad("unsigned")) > unsignedLoad && (await rejectedLoad("claims_other_node")) > otherLoad, 30_000);
    // 3. The victim's certificate, but a signature over other bytes (a record altered after signing).
    const altered = encodeUpdates([succeeded(jobId, 2, "altered")]);
    await send(victim.nodeId, altered, recordSigner(() => victim).headers(events, victim.nodeId, Buffer.from("what the victim signed")));
    // 4. A certificate for the victim's node id from a CA the attacker made itself.
    const rogueCa = await createCa("rogue");
    const rogueCsr = await createCsr();
    const rogue: SigningIdentity = { keyPem: rogueCsr.keyPem, certPem: (await signNodeCsr(rogueCa.certPem, rogueCa.keyPem, rogueCsr.csrPem, victim.nodeId)).certPem };
    const foreign = encodeUpdates([succeeded(jobId, 3, "foreign")]);
    await send(victim.nodeId, foreign, recordSigner(() => rogue).headers(events, victim.nodeId, foreign));
    // 5. A removed node's own, correctly signed record.
    await client.removeNode(attacker.nodeId);
    const fromRemoved = encodeUpdates([succeeded(jobId, 4, "removed")]);
    await send(attacker.nodeId, fromRemoved, recordSigner(() => attacker).headers(events, attacker.nodeId, fromRemoved));
    // 6. The victim's genuine result for task 5, signed with its key: accepted.
    const genuine = encodeUpdates([succeeded(jobId, 5, "genuine")]);
    await send(victim.nodeId, genuine, recordSigner(() => victim).headers(events, victim.nodeId, genuine));

    await until("the genuine result to be accepted", async () => (await client.getJob(jobId)).counts?.succeeded === 1, 30_000);
    const delta = async (r: string) => (await rejected(r)) - before[r]!;
    await until("every forged record to be counted", async () => (await delta("unsigned")) >= 1 && (await delta("claims_other_node")) >= 1 && (await delta("bad_signature")) >= 1 && (await delta("unknown_signer")) >= 1 && (await delta("removed_node")) >= 1, 30_000);
    for (const r of REASONS) expect(await delta(r), r).toBe(1);
    const job = await client.getJob(jobId);
    expect(job.counts?.succeeded).toBe(1);
    expect(job.counts?.assigned).toBe(5);
    const results = await client.getResults(jobId);
    const done = results.filter((r) => r.state === "TASK_STATE_SUCCEEDED");
    expect(done.map((r) => [r.taskIndex, Buffer.from(r.output).toString(), r.nodeId])).toEqual([[5, "genuine", victim.nodeId]]);
    session.cancel();
    victim.stub.close();
    attacker.stub.close();
  }, 120_000);
});
