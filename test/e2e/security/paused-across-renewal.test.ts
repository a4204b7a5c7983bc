// An agent paused (SIGSTOP) across its certificate renewal, on a secure Kafka + Redis cluster
// with sealed assignments. Node certificates live CERT_LIFETIME_MS, so the agent misses its
// renewal window and its certificate expires while it is stopped; the scheduler's keepalive
// drops its connection meanwhile, so after SIGCONT it has only an expired certificate to show.
// Expected (docs/security.md, "Renewal"): while paused, the node is DOWN and its tasks run on the
// other agent; after SIGCONT it renews with proof of its expired certificate's key (a clear log
// line), registers again as the same node, opens assignments sealed to its new key, and takes
// new work. Every task of the job running across the pause ends once with the right result.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { DistributeXClient } from "../../../client/index.js";
import { LocalCluster, type ClusterProcess } from "../../../cli/local-cluster.js";
import { repoRoot } from "../../../common/paths.js";
import { getExampleKernel } from "../../../kernels/reference/index.js";
import { exampleWasm } from "../../helpers/fixtures.js";
import { grantKafkaAcls, secureKafka, secureKafkaRoles, sleep, testServices, uniquePrefix, until } from "../../helpers/services.js";

/**
 * Certificates are back-dated 60 s (clock skew) and renewed at 2/3 of notBefore..notAfter: with
 * 35 s, about 3 s after each is issued, and each expires 35 s after it was issued.
 */
const CERT_LIFETIME_MS = 35_000;
/** Longer than a certificate lives, and than the scheduler's keepalive (10 s + 5 s) takes to drop the link. */
const PAUSE_MS = 40_000;
const AGENT_TIMEOUT_MS = 2000;

const example = getExampleKernel("montecarlo_pi");
let cluster: LocalCluster;
let client: DistributeXClient;
let kernelId: string;
let victim: ClusterProcess;
let victimNode: string;

const agentLog = (): string =>
  readdirSync(cluster.logDir!).filter((f) => f.startsWith("agent-0")).map((f) => readFileSync(path.join(cluster.logDir!, f), "utf8")).join("");

async function nodeStates(): Promise<Map<string, string>> {
  return new Map((await client.listNodes(true)).map((n) => [n.nodeId, n.state]));
}

async function dropped(reason: string): Promise<number> {
  const text = await (await fetch(`http://${await cluster.adminAddress("agent-0")}/metrics`)).text();
  return Number(new RegExp(`^distx_agent_dropped_assignment_records_total\\{reason="${reason}"\\} (\\d+)`, "m").exec(text)?.[1] ?? 0);
}

beforeAll(async () => {
  const { brokers, dir } = secureKafka();
  const { redis } = testServices();
  const prefix = uniquePrefix("renewpause");
  grantKafkaAcls(prefix);
  const roles = secureKafkaRoles(dir);
  cluster = new LocalCluster({
    agents: 2,
    workersPerAgent: 1,
    logs: path.join(repoRoot(), "test-output", "logs", `paused-across-renewal-${Date.now()}`),
    env: { DISTX_NODE_CERT_LIFETIME_MS: String(CERT_LIFETIME_MS) },
    schedulerArgs: [
      "--bus", "kafka", "--kafka-brokers", brokers, "--kafka-topic-prefix", prefix, "--drain-grace-ms", "0",
      "--state", "redis", "--redis-url", redis, "--redis-prefix", prefix,
      "--heartbeat-interval-ms", "500", "--agent-timeout-ms", String(AGENT_TIMEOUT_MS),
      ...roles.args("scheduler"),
    ],
    agentArgs: (i) => ["--no-calibrate", "--gpu", "off", "--labels", `agent=${i}`, ...roles.args("agent")],
    readyTimeoutMs: 90_000,
  });
  await cluster.start();
  client = new DistributeXClient(cluster.address);
  ({ kernelId } = await client.registerKernel(await exampleWasm("montecarlo_pi")));
  victim = cluster.processes.find((p) => p.name === "agent-0")!;
  await until("agent-0 to register", async () => /"event":"registered"/.test(agentLog()), 30_000);
  victimNode = /"event":"registered"[^\n]*"nodeId":"([^"]+)"/.exec(agentLog())![1]!;
}, 180_000);

afterAll(async () => {
  if (victim?.child.exitCode === null) victim.child.kill("SIGCONT");
  client?.close();
  await cluster?.stop(3000);
});

/** A job's results: one per task, each correct. */
async function checkJob(jobId: string, inputs: Uint8Array[]): Promise<Set<string>> {
  const job = await client.waitForJob(jobId);
  expect(job.state).toBe("JOB_STATE_SUCCEEDED");
  const results = await client.getResults(jobId);
  expect(results).toHaveLength(inputs.length);
  expect(new Set(results.map((r) => r.taskIndex)).size).toBe(inputs.length);
  for (const r of results) expect(example.check(inputs[r.taskIndex]!, r.output).ok).toBe(true);
  return new Set(results.map((r) => r.nodeId));
}

it("an agent paused past its certificate's expiry renews, comes back as the same node and takes sealed work", async () => {
  expect((await nodeStates()).get(victimNode)).toBe("NODE_STATE_READY");
  // Renewals come every few seconds at this lifetime; one has gone through before the pause.
  await until("agent-0 to renew once", async () => /"event":"cert_renewed"/.test(agentLog()), 15_000);
  const otherKey = await dropped("other_key");

  // A job in flight across the pause: tasks on both agents.
  const inputs = example.makeTasks({ tasks: 30, size: 30 * 4_000_000 });
  const { jobId } = await client.submitJob({ kernelId, inputs, skipResultCache: true });
  const holding = async () => ((await client.listNodes(true)).find((n) => n.nodeId === victimNode)?.assignedTasks ?? 0) > 0;
  await until("agent-0 to hold tasks of the job", holding, 20_000, 10);
  victim.child.kill("SIGSTOP");
  const pausedAt = Date.now();
  await until("the paused node to be DOWN", async () => (await nodeStates()).get(victimNode) === "NODE_STATE_DOWN", AGENT_TIMEOUT_MS * 5);
  // Its tasks run on the other agent meanwhile: the job ends while agent-0 is still stopped.
  const nodes = await checkJob(jobId, inputs);
  expect(Date.now() - pausedAt, "the job finished while agent-0 was paused").toBeLessThan(PAUSE_MS);
  expect([...nodes].some((n) => n !== victimNode), "the other agent ran tasks").toBe(true);
  const schedulerLog = readFileSync(path.join(cluster.logDir!, "scheduler.log"), "utf8");
  const down = new RegExp(`"event":"node_down","nodeId":"${victimNode}"[^\\n]*"tasks":(\\d+)`).exec(schedulerLog);
  expect(Number(down?.[1]), "the tasks agent-0 held were placed elsewhere").toBeGreaterThan(0);
  await sleep(PAUSE_MS - (Date.now() - pausedAt));
  victim.child.kill("SIGCONT");

  // Its certificate expired while it was stopped: it gets a new one and registers as the same node.
  await until("the resumed node to be READY", async () => (await nodeStates()).get(victimNode) === "NODE_STATE_READY", 20_000);
  // The scheduler marks the node READY as it answers Register; the agent's log line of that
  // answer is written a moment later (CI once read the log in between), so wait for it.
  const registeredAgain = new RegExp(`"event":"registered"[^\\n]*"nodeId":"${victimNode}"`);
  const afterRenewal = () => {
    const log = agentLog();
    const at = log.lastIndexOf('"event":"cert_renewed_after_expiry"');
    return at < 0 ? "" : log.slice(at);
  };
  await until("agent-0 to log its registration after renewing", async () => registeredAgain.test(afterRenewal()), 10_000, 50).catch(() => undefined);
  const log = agentLog();
  expect(log).toMatch(/"event":"cert_renewed_after_expiry"/);
  expect(afterRenewal()).toMatch(registeredAgain);

  // It takes new work: a job only it may run, whose assignments are sealed to its new key.
  const mine = example.makeTasks({ tasks: 6, size: 6 * 200_000 });
  const run = await client.submitJob({ kernelId, inputs: mine, skipResultCache: true, resources: { nodeSelector: { agent: "0" } } });
  expect(await checkJob(run.jobId, mine)).toEqual(new Set([victimNode]));
  // Nothing sealed for it was left unopenable (a record sealed to a key it no longer holds).
  expect(await dropped("other_key")).toBe(otherKey);
}, 90_000);
