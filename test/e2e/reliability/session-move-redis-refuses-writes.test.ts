// The state store refusing writes while an agent moves its session to a renewed certificate.
// Certificates live CERT_LIFETIME_MS, so the agent renews and moves its session (no Register:
// agent/scheduler-link.ts) every couple of seconds; the scheduler keeps its state in a private
// Redis that refuses writes (maxmemory reached, noeviction: OOM to writes, reads still served)
// for OUTAGE_MS in the middle of a job, across at least one move. Assignments and updates travel
// on the session (no Kafka), so results reported on the old or the new session while their
// writes fail must be neither lost nor recorded twice. Expected: the job ends with every result
// correct exactly once, the node stays the same node and is READY afterwards (never DOWN, never
// registered again); a submission while the store refuses writes fails with a clear retryable
// error (UNAVAILABLE) when the client does not retry, and succeeds once writes come back when it does.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { DistributeXClient } from "../../../client/index.js";
import { LocalCluster } from "../../../cli/local-cluster.js";
import { repoRoot } from "../../../common/paths.js";
import { getExampleKernel } from "../../../kernels/reference/index.js";
import { exampleWasm } from "../../helpers/fixtures.js";
import { privateRedis, type PrivateRedis } from "../../helpers/private-redis.js";
import { sleep, uniquePrefix, until } from "../../helpers/services.js";

/** Back-dated 60 s and renewed at 2/3 of its validity: renewed (and the session moved) about 2 s after each is issued. */
const CERT_LIFETIME_MS = 33_000;
/** Longer than two renewals, shorter than the lease (20 s): a lease lost is another fault. */
const OUTAGE_MS = 6000;
const TASKS = 300;

const example = getExampleKernel("montecarlo_pi");
let r: PrivateRedis;
let cluster: LocalCluster;
let client: DistributeXClient;

const logOf = (prefix: string): string =>
  readdirSync(cluster.logDir!).filter((f) => f.startsWith(prefix)).map((f) => readFileSync(path.join(cluster.logDir!, f), "utf8")).join("");
const count = (text: string, re: RegExp): number => text.match(new RegExp(re.source, "g"))?.length ?? 0;
const oomErrors = () => Number(/^errorstat_OOM:count=(\d+)/m.exec(r.cli("info", "errorstats"))?.[1] ?? 0);

beforeAll(async () => {
  r = await privateRedis();
  r.cli("config", "set", "maxmemory-policy", "noeviction");
  const prefix = uniquePrefix("movew");
  cluster = new LocalCluster({
    agents: 1,
    workersPerAgent: 2,
    logs: path.join(repoRoot(), "test-output", "logs", `session-move-redis-refuses-writes-${Date.now()}`),
    env: { DISTX_NODE_CERT_LIFETIME_MS: String(CERT_LIFETIME_MS) },
    schedulerArgs: [
      "--state", "redis", "--redis-url", r.url, "--redis-prefix", prefix, "--lease-ttl-ms", "20000",
      "--heartbeat-interval-ms", "500", "--agent-timeout-ms", "3000",
    ],
    agentArgs: () => ["--no-calibrate", "--gpu", "off", "--connect-timeout-ms", "0"],
    readyTimeoutMs: 60_000,
  });
  await cluster.start();
  client = new DistributeXClient(cluster.address, { tokenFile: cluster.adminTokenFile });
  await until("the agent to register", async () => /"event":"registered"/.test(logOf("agent-0")), 30_000);
}, 90_000);

afterAll(async () => {
  r?.cli("config", "set", "maxmemory", "0");
  client?.close();
  await cluster?.stop(3000);
  r?.stop();
});

it("a session moved while Redis refuses writes: every task once, the node READY and the same; submissions fail retryably or succeed", async () => {
  const nodeId = /"event":"registered"[^\n]*"nodeId":"([^"]+)"/.exec(logOf("agent-0"))![1]!;
  const { kernelId } = await client.registerKernel(await exampleWasm("montecarlo_pi"));
  const inputs = example.makeTasks({ tasks: TASKS, size: TASKS * 1_500_000, seed: 3 });
  const { jobId } = await client.submitJob({ kernelId, inputs, skipResultCache: true });
  await until("30 tasks done", async () => (await client.getJob(jobId)).counts!.succeeded >= 30, 60_000, 50);

  const movesBefore = count(logOf("agent-0"), /"event":"session_moved"/);
  r.cli("config", "set", "maxmemory", "1");
  const outageStart = Date.now();
  await until("Redis to refuse a write", async () => oomErrors() > 0, 10_000, 10);
  // Without retries, a submission the store refuses is a clear, retryable error; with them, it
  // goes through once writes come back.
  const once = new DistributeXClient(cluster.address, { tokenFile: cluster.adminTokenFile, retry: false });
  await expect(once.submitJob({ kernelId, inputs: inputs.slice(0, 4), skipResultCache: true })).rejects.toThrow(/UNAVAILABLE/);
  once.close();
  const retried = client.submitJob({ kernelId, inputs: inputs.slice(0, 4), skipResultCache: true });
  // The outage spans at least one move of the session.
  await until("a session move during the outage", async () => count(logOf("agent-0"), /"event":"session_moved"/) > movesBefore, 20_000, 50);
  await sleep(Math.max(0, OUTAGE_MS - (Date.now() - outageStart)));
  const duringOutage = await client.getJob(jobId);
  r.cli("config", "set", "maxmemory", "0");
  const moves = count(logOf("agent-0"), /"event":"session_moved"/) - movesBefore;
  console.log(`outage ${Date.now() - outageStart} ms: ${moves} session moves, ${oomErrors()} writes refused, ${duringOutage.counts!.succeeded}/${TASKS} done at its end`);
  expect(duringOutage.state, "the job was still running when writes came back").toBe("JOB_STATE_RUNNING");

  const job = await client.waitForJob(jobId);
  expect(job.state).toBe("JOB_STATE_SUCCEEDED");
  const results = await client.getResults(jobId);
  expect(results.map((x) => x.taskIndex).sort((a, b) => a - b)).toEqual(inputs.map((_, i) => i));
  for (const x of results) {
    expect(example.check(inputs[x.taskIndex]!, x.output).ok, `task ${x.taskIndex}`).toBe(true);
    expect(x.nodeId).toBe(nodeId);
  }
  const late = await retried;
  expect((await client.waitForJob(late.jobId)).state).toBe("JOB_STATE_SUCCEEDED");
  expect(await client.getResults(late.jobId)).toHaveLength(4);

  // The same node throughout: it moved its session, never registered again and was never DOWN.
  const agentLog = logOf("agent-0");
  expect(count(agentLog, /"event":"registered"/)).toBe(1);
  expect(agentLog).not.toMatch(/"event":"session_lost"/);
  expect(logOf("scheduler")).not.toMatch(new RegExp(`"event":"node_down","nodeId":"${nodeId}"`));
  const nodes = await client.listNodes(true);
  expect(nodes.map((n) => [n.nodeId, n.state])).toEqual([[nodeId, "NODE_STATE_READY"]]);
}, 150_000);
