// An agent keeps working across several lifetimes of its node certificate. Certificates live
// CERT_LIFETIME_MS, and the scheduler ends a session when the certificate that opened it expires
// (cert-expiry.test.ts), so the agent must move its session to a connection made with each
// renewed certificate, before the old one expires, without registering again (which would hand
// its tasks to another node). The scheduler carries assignments and updates on the session here
// (memory bus): a message lost in a move would leave a task unfinished or run it twice.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { DistributeXClient } from "../../../client/index.js";
import { LocalCluster } from "../../../cli/local-cluster.js";
import { repoRoot } from "../../../common/paths.js";
import { getExampleKernel } from "../../../kernels/reference/index.js";
import { exampleWasm } from "../../helpers/fixtures.js";
import { until } from "../../helpers/services.js";

/**
 * Certificates are back-dated 60 s and renewed at 2/3 of notBefore..notAfter: with 33 s, each is
 * renewed about 2 s after it is issued, and would expire 33 s after it is issued.
 */
const CERT_LIFETIME_MS = 33_000;
/** Several lifetimes: the first certificate, and the sessions opened on the early renewals, all expire meanwhile. */
const RUN_MS = Math.round(2.2 * CERT_LIFETIME_MS);

const example = getExampleKernel("montecarlo_pi");
let cluster: LocalCluster;
let client: DistributeXClient;

const logOf = (prefix: string): string =>
  readdirSync(cluster.logDir!).filter((f) => f.startsWith(prefix)).map((f) => readFileSync(path.join(cluster.logDir!, f), "utf8")).join("");
const count = (text: string, re: RegExp): number => text.match(new RegExp(re.source, "g"))?.length ?? 0;

beforeAll(async () => {
  cluster = new LocalCluster({
    agents: 1,
    workersPerAgent: 2,
    logs: path.join(repoRoot(), "test-output", "logs", `renewal-session-move-${Date.now()}`),
    env: { DISTX_NODE_CERT_LIFETIME_MS: String(CERT_LIFETIME_MS) },
    schedulerArgs: ["--heartbeat-interval-ms", "500", "--agent-timeout-ms", "3000"],
    agentArgs: () => ["--no-calibrate", "--gpu", "off"],
    readyTimeoutMs: 60_000,
  });
  await cluster.start();
  client = new DistributeXClient(cluster.address);
  await until("the agent to register", async () => /"event":"registered"/.test(logOf("agent-0")), 30_000);
}, 90_000);

afterAll(async () => {
  client?.close();
  await cluster?.stop(3000);
});

it("an agent that renews keeps its session and node across several certificate lifetimes, every task done exactly once", async () => {
  const nodeId = /"event":"registered"[^\n]*"nodeId":"([^"]+)"/.exec(logOf("agent-0"))![1]!;
  const { kernelId } = await client.registerKernel(await exampleWasm("montecarlo_pi"));
  const started = Date.now();
  let tasks = 0;
  let jobs = 0;
  // Jobs back to back, so that tasks are assigned, running and reporting through every move.
  while (Date.now() - started < RUN_MS) {
    const inputs = example.makeTasks({ tasks: 12, size: 12 * 1_500_000, seed: jobs + 1 });
    const { jobId } = await client.submitJob({ kernelId, inputs, skipResultCache: true });
    const job = await client.waitForJob(jobId);
    expect(job.state, `job ${jobs}`).toBe("JOB_STATE_SUCCEEDED");
    const results = await client.getResults(jobId);
    expect(results.map((r) => r.taskIndex).sort((a, b) => a - b)).toEqual(inputs.map((_, i) => i));
    for (const r of results) {
      expect(example.check(inputs[r.taskIndex]!, r.output).ok).toBe(true);
      expect(r.attempt, `job ${jobs} task ${r.taskIndex} ran once`).toBe(1);
      expect(r.nodeId).toBe(nodeId);
    }
    tasks += inputs.length;
    jobs++;
  }

  const agentLog = logOf("agent-0");
  const schedulerLog = logOf("scheduler");
  // It renewed and moved its session many times, and never lost it or registered again.
  const moves = count(agentLog, /"event":"session_moved"/);
  expect(count(agentLog, /"event":"cert_renewed"/)).toBeGreaterThanOrEqual(10);
  expect(moves).toBeGreaterThanOrEqual(10);
  expect(agentLog).not.toMatch(/"event":"session_lost"/);
  expect(count(agentLog, /"event":"registered"/)).toBe(1);
  expect(schedulerLog).not.toMatch(new RegExp(`"event":"node_down","nodeId":"${nodeId}"`));
  const node = (await client.listNodes(true)).find((n) => n.nodeId === nodeId);
  expect(node?.state).toBe("NODE_STATE_READY");
  expect(Number(node?.completedTasks)).toBe(tasks);
}, RUN_MS + 60_000);
