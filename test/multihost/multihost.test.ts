// The multi-host suite: Redis, a Kafka broker, the scheduler and each agent in its own network
// namespace on a bridge (test/multihost/topology.ts), so every byte between them crosses a real
// link that the tests can cut, blackhole or slow down. What each network fault does, and what these
// cases assert: test/multihost/README.md.
// Needs root; scripts/test.sh runs this file on its own after the main pass.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getExampleKernel } from "../../kernels/reference/index.js";
import type { JobEvent } from "../../client/index.js";
import { exampleWasm } from "../helpers/fixtures.js";
import { MultiHostCluster, until, type Daemon } from "./cluster.js";
import { multihostUnavailable } from "./topology.js";

const unavailable = multihostUnavailable();
const example = getExampleKernel("montecarlo_pi");
const TIMING = { heartbeatIntervalMs: 500, agentTimeoutMs: 3000, leaseTtlMs: 2000 };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let c: MultiHostCluster;
let kernelId = "";
/** The two agents every case has: hosts agent-a and agent-b, one worker each. */
let nodeA = "";
let nodeB = "";
let seed = 1;

interface TaskSeen {
  index: number;
  state: string;
  node: string;
  attempt: number;
  at: number;
}

/**
 * Submits a montecarlo job of `tasks` tasks and waits for it; asserts it SUCCEEDED with exactly one
 * result per task, each checked against the plain-JS reference. `onEvent` sees every task event.
 */
async function runJob(
  tasks: number,
  samplesPerTask: number,
  options: { onEvent?: (e: TaskSeen, seen: TaskSeen[]) => void; nodeSelector?: Record<string, string>; name?: string } = {},
) {
  const client = c.client();
  const inputs = example.makeTasks({ tasks, size: tasks * samplesPerTask, seed: seed++ });
  const { jobId } = await client.submitJob({ kernelId, inputs, name: options.name ?? "multihost", skipResultCache: true, maxAttempts: 10, resources: options.nodeSelector ? { nodeSelector: options.nodeSelector } : undefined });
  const seen: TaskSeen[] = [];
  const job = await client.waitForJob(jobId, (ev: JobEvent) => {
    if (!ev.task) return;
    const e = { index: ev.task.taskIndex, state: ev.task.state, node: ev.task.nodeId, attempt: ev.task.attempt, at: Date.now() };
    seen.push(e);
    options.onEvent?.(e, seen);
  });
  expect(job.state).toBe("JOB_STATE_SUCCEEDED");
  expect(job.counts?.succeeded).toBe(tasks);
  const results = await client.getResults(jobId);
  expect(results).toHaveLength(tasks);
  expect(new Set(results.map((r) => r.taskIndex)).size).toBe(tasks);
  for (const r of results) {
    const check = example.check(inputs[r.taskIndex]!, r.output);
    expect(check.ok, `task ${r.taskIndex}: ${check.detail}`).toBe(true);
  }
  return { jobId, job, results, seen, doneAt: Date.now() };
}

const succeeded = (seen: TaskSeen[]) => seen.filter((e) => e.state === "TASK_STATE_SUCCEEDED");

describe.skipIf(unavailable !== undefined)(unavailable ? `multi-host topology (skipped: ${unavailable})` : "multi-host topology", () => {
  beforeAll(async () => {
    c = await MultiHostCluster.start(TIMING);
    const [a, b] = [await c.startAgent("agent-a"), await c.startAgent("agent-b")];
    [nodeA, nodeB] = await Promise.all([c.nodeIdOf(a), c.nodeIdOf(b)]);
    await Promise.all([c.waitForNodeState(nodeA, "NODE_STATE_READY", 30_000), c.waitForNodeState(nodeB, "NODE_STATE_READY", 30_000)]);
    ({ kernelId } = await c.client().registerKernel(await exampleWasm("montecarlo_pi")));
  }, 300_000);

  afterAll(async () => {
    await c?.stop();
  }, 60_000);

  it("every daemon listens on its own address and is reached over the bridge, never over loopback", async () => {
    const sched = c.net.host("scheduler");
    const listening = await c.net.exec("scheduler", "cat", ["/proc/net/tcp"]);
    // /proc/net/tcp shows the namespace's sockets: the scheduler's port is bound to its own address.
    const hex = (ip: string, port: number) => ip.split(".").map((o) => Number(o).toString(16).padStart(2, "0").toUpperCase()).reverse().join("") + ":" + port.toString(16).toUpperCase().padStart(4, "0");
    expect(listening).toContain(hex(sched.ip, 7070));
    // From another host, the scheduler's loopback is not the scheduler: nothing listens there.
    await expect(c.net.exec("agent-a", "bash", ["-c", "exec 3<>/dev/tcp/127.0.0.1/7070"], { timeoutMs: 5000 })).rejects.toThrow();
    // Every node registered from its own host's namespace; a job runs on both agents.
    const { results } = await runJob(12, 400_000);
    expect(new Set(results.map((r) => r.nodeId))).toEqual(new Set([nodeA, nodeB]));
  }, 120_000);

  it("an agent cut off mid-job (link down) goes DOWN, its tasks are placed again elsewhere, and after the heal the same node is READY and takes work", async () => {
    let cutAt = 0;
    let heldAtCut = 0;
    const cut = (e: TaskSeen, seen: TaskSeen[]) => {
      if (cutAt || e.state !== "TASK_STATE_SUCCEEDED" || succeeded(seen).length < 4) return;
      cutAt = Date.now();
      // The tasks agent-a held then (assigned or running, not finished): these must be placed again.
      const last = new Map<number, TaskSeen>();
      for (const s of seen) last.set(s.index, s);
      heldAtCut = [...last.values()].filter((s) => s.node === nodeA && s.state !== "TASK_STATE_SUCCEEDED").length;
      void c.net.linkDown("agent-a");
    };
    // 40 tasks of ~50 ms on two one-worker agents.
    const downSeen = (async () => {
      await until("the cut", async () => cutAt > 0, 120_000, 50);
      return c.waitForNodeState(nodeA, "NODE_STATE_DOWN", TIMING.agentTimeoutMs + 15_000);
    })();
    const job = runJob(40, 2_000_000, { onEvent: cut, name: "link-down" });
    const downAt = await downSeen;
    const { results, seen, doneAt } = await job;
    expect(cutAt).toBeGreaterThan(0);
    // DOWN is declared by the liveness sweep, about agentTimeoutMs after the last heartbeat.
    expect(downAt - cutAt).toBeGreaterThanOrEqual(TIMING.agentTimeoutMs - TIMING.heartbeatIntervalMs - 500);
    // The job finished while agent-a was still cut off: everything after the cut ran on agent-b.
    const afterCut = results.filter((r) => seen.find((s) => s.index === r.taskIndex && s.state === "TASK_STATE_SUCCEEDED")!.at > cutAt + 2000);
    expect(afterCut.every((r) => r.nodeId === nodeB)).toBe(true);
    if (heldAtCut > 0) expect(results.some((r) => r.attempt > 1 && r.nodeId === nodeB)).toBe(true);
    expect(doneAt).toBeGreaterThan(cutAt);

    await c.net.linkUp("agent-a");
    const readyAt = await c.waitForNodeState(nodeA, "NODE_STATE_READY", 60_000);
    expect(readyAt).toBeGreaterThan(downAt);
    // The same node (its identity is its certificate) comes back and runs work pinned to it.
    const pinned = await runJob(4, 200_000, { nodeSelector: { host: "agent-a" }, name: "after-heal" });
    expect(new Set(pinned.results.map((r) => r.nodeId))).toEqual(new Set([nodeA]));
  }, 180_000);
});
