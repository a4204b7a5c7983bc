// Defect 4 of the reliability issue: with the scheduler gone longer than connectTimeoutMs, agents
// used to log fatal and exit, and `distx up` exited silently with them. An agent must retry for
// ever (capped exponential backoff with jitter), say so in its log and metrics, and register and
// work again when the scheduler returns; `distx up` must say which child exited and why.
import { spawn, execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterEach, expect, it } from "vitest";
import { DistributeXClient } from "../../../client/index.js";
import { cliEntry, LocalCluster, waitForListening, type ClusterProcess } from "../../../cli/local-cluster.js";
import { repoRoot } from "../../../common/paths.js";
import { exampleKernels } from "../../../kernels/reference/index.js";
import { exampleWasm } from "../../helpers/fixtures.js";
import { freePort } from "../../helpers/net.js";
import { sleep, until } from "../../helpers/poll.js";


let cluster: LocalCluster | undefined;
afterEach(async () => {
  await cluster?.stop(3000);
  cluster = undefined;
});

async function metric(admin: string, name: string): Promise<number | undefined> {
  const text = await (await fetch(`http://${admin}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? undefined : Number(line.split(" ").pop());
}

it("an agent outlives a scheduler outage longer than connectTimeoutMs, says so, and works again when it returns", async () => {
  const port = await freePort();
  const logs = path.join(repoRoot(), "test-output", "logs", `agent-retries-${Date.now()}`);
  cluster = new LocalCluster({ agents: 0, logs, port, schedulerArgs: ["--heartbeat-interval-ms", "200", "--agent-timeout-ms", "2000"] });
  const address = await cluster.start();
  const agent = cluster.startAgent(0, ["--workers", "1", "--no-calibrate", "--connect-timeout-ms", "1500"]);
  await cluster.waitForNodes(1);
  const admin = await cluster.adminAddress("agent-0");
  expect(await metric(admin, "distx_agent_connected")).toBe(1);

  const scheduler = cluster.processes.find((p) => p.name === "scheduler")!;
  scheduler.child.kill("SIGKILL");
  await scheduler.exited;
  cluster.processes.splice(cluster.processes.indexOf(scheduler), 1);

  // Three times connectTimeoutMs without a scheduler: the agent must still be there, retrying.
  await sleep(4500);
  expect(agent.child.exitCode, "the agent exited while the scheduler was away").toBeNull();
  expect(await metric(admin, "distx_agent_connected")).toBe(0);
  expect(await metric(admin, "distx_agent_reconnects_total")).toBeGreaterThanOrEqual(2);
  const log = readFileSync(path.join(logs, "agent-0.log"), "utf8");
  const retries = log.split("\n").filter((l) => l.includes('"event":"reconnect_retry"'));
  expect(retries.length).toBeGreaterThanOrEqual(2);
  const first = JSON.parse(retries[0]!) as { attempt?: number; retryInMs?: number };
  expect(first.attempt).toBeTypeOf("number");
  expect(first.retryInMs).toBeTypeOf("number");
  expect(log).not.toContain('"level":60'); // nothing fatal

  // The scheduler returns on the same address: the agent registers again and runs a job.
  const back = cluster.spawnProcess("scheduler", ["scheduler", "--port", String(port), "--admin-port", "0", "--heartbeat-interval-ms", "200", "--agent-timeout-ms", "2000"]);
  await waitForListening(back, 30_000);
  await cluster.waitForNodes(1);
  await until("distx_agent_connected 1", async () => (await metric(admin, "distx_agent_connected")) === 1, 10_000, 100);
  const client = new DistributeXClient(address);
  try {
    const { kernelId } = await client.registerKernel(await exampleWasm("saxpy"));
    const saxpy = exampleKernels.saxpy!;
    const inputs = saxpy.makeTasks({ tasks: 8, size: 64, seed: 1 });
    const { job, results } = await client.run({ kernelId, inputs, skipResultCache: true });
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    for (const r of results) expect(saxpy.check(inputs[r.taskIndex]!, r.output).ok).toBe(true);
  } finally {
    client.close();
  }
}, 90_000);

it("after a long outage, an agent is back within the agent timeout + 2 s of its scheduler listening again", async () => {
  // Found by the chaos harness: grpc-js backs a failing channel's reconnects off up to 120 s, and
  // calls made meanwhile fail without trying, so after half a minute of outage an agent came back
  // 10-30 s after the scheduler did, whatever its own retry pace. The bound is the liveness
  // property's (a node reachable again is READY within agent timeout + 2 s), plus 2 s for a
  // loaded machine.
  const port = await freePort();
  const logs = path.join(repoRoot(), "test-output", "logs", `agent-back-${Date.now()}`);
  const args = ["--heartbeat-interval-ms", "200", "--agent-timeout-ms", "2000"];
  cluster = new LocalCluster({ agents: 0, logs, port, schedulerArgs: args });
  await cluster.start();
  cluster.startAgent(0, ["--workers", "1", "--no-calibrate"]);
  await cluster.waitForNodes(1);
  const scheduler = cluster.processes.find((p) => p.name === "scheduler")!;
  scheduler.child.kill("SIGKILL");
  await scheduler.exited;
  cluster.processes.splice(cluster.processes.indexOf(scheduler), 1);
  await sleep(30_000);

  const back = cluster.spawnProcess("scheduler", ["scheduler", "--port", String(port), ...args]);
  await waitForListening(back, 30_000);
  const listeningAt = Date.now();
  await cluster.waitForNodes(1);
  expect(Date.now() - listeningAt, "ms from the scheduler listening to the agent READY").toBeLessThanOrEqual(2000 + 2000 + 2000);
}, 90_000);

it("`distx up` says which child exited and why instead of exiting silently", async () => {
  const port = await freePort();
  const up = spawn(process.execPath, [cliEntry(), "up", "--agents", "2", "--workers", "1", "--port", String(port)], { stdio: ["ignore", "pipe", "pipe"] });
  const up1: ClusterProcess = { name: "up", child: up, exited: new Promise((r) => up.on("exit", (c, s) => r(c ?? (s ? 128 : null)))) };
  let stderr = "";
  up.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  up.stdout!.resume();
  try {
    await until("distx up to be ready", async () => stderr.includes("distx up: scheduler at"), 60_000, 100);
    const children = execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(up.pid)], { encoding: "utf8" }).trim().split("\n");
    const agentLine = children.find((l) => l.includes(" agent ") && l.includes("agent-1"))!;
    expect(agentLine, children.join("\n")).toBeDefined();
    process.kill(Number(agentLine.trim().split(/\s+/)[0]), "SIGKILL");
    await until("distx up to report the dead agent", async () => /agent-1\b.*(SIGKILL|signal)/.test(stderr), 10_000, 100);
    // The rest of the cluster keeps serving.
    expect(up.exitCode).toBeNull();
    const client = new DistributeXClient(`127.0.0.1:${port}`);
    try {
      await until("one node READY", async () => (await client.listNodes()).filter((n) => n.state === "NODE_STATE_READY").length === 1, 10_000, 100);
    } finally {
      client.close();
    }
  } finally {
    up.kill("SIGTERM");
    await Promise.race([up1.exited, sleep(20_000)]);
    if (up.exitCode === null) up.kill("SIGKILL");
  }
}, 90_000);
