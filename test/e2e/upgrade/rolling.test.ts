// A rolling upgrade (issue #15, item 6) across real processes, with two releases built from the
// tree (test/helpers/versioned-build.ts): the scheduler already runs the new release N = 0.2.0
// (docs/operations.md "Upgrades": schedulers first), its two agents the old one N-1 = 0.1.0 (this
// tree, one minor older: accepted). While a job runs, each agent in turn is drained (SIGTERM), replaced
// by the new release on the same data dir (its node identity) and rejoins; the next one only once
// that one is READY again with the new version, as the docs say. Nothing may be lost, failed or
// retried, and every result must be correct.
//
// Steps wait on states (the job's event stream, ListNodes, the old process's exit), never on how
// long anything takes: the job is long enough that both agents are replaced while it runs, and the
// test says so if it was not.
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { cliEntry, type ClusterProcess } from "../../../cli/local-cluster.js";
import { packageVersion } from "../../../common/version.js";
import { getExampleKernel } from "../../../kernels/reference/index.js";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";
import { exampleWasm } from "../../helpers/fixtures.js";
import { until } from "../../helpers/poll.js";
import { versionedBuild, type VersionedBuild } from "../../helpers/versioned-build.js";

let t: TestCluster;
let next: VersionedBuild;

beforeAll(async () => {
  next = versionedBuild("0.2.0");
  t = await startTestCluster("rolling-upgrade", { agents: 0, cliEntry: next.entry });
}, 60_000);

afterAll(async () => {
  await t?.stop();
  next?.remove();
});

type Ev = { index: number; state: string; node: string; attempt: number };

it("replaces both agents with the next release one at a time while a job runs, losing and failing nothing", { timeout: 300_000 }, async () => {
  expect(packageVersion()).toBe("0.1.0"); // the tree is the old release here
  const c = t.cluster;
  const dataDir = path.dirname(c.credentialFiles().tokenFile);
  // Explicit data dirs, so a replaced agent rejoins as the same node (its key and certificate).
  const agentArgs = (i: number) => [
    "--no-calibrate",
    "--drain-grace-ms",
    "120000",
    "--data-dir",
    path.join(dataDir, "agents", `rolling-${i}`),
    "--join-token-file",
    path.join(dataDir, "local-join.token"),
    "--ca",
    c.credentialFiles().caFile,
  ];
  // One after the other, so which node is which agent is known.
  const procs: ClusterProcess[] = [];
  const nodeOf = new Map<string, string>();
  for (const i of [0, 1]) {
    procs.push(c.startAgent(i, agentArgs(i), cliEntry()));
    await c.waitForNodes(i + 1);
    const fresh = (await t.client.listNodes()).find((n) => ![...nodeOf.values()].includes(n.nodeId))!;
    expect(fresh.agentVersion).toBe("0.1.0");
    nodeOf.set(`agent-${i}`, fresh.nodeId);
  }

  const example = getExampleKernel("montecarlo_pi");
  const { kernelId } = await t.client.registerKernel(await exampleWasm("montecarlo_pi"), { name: "montecarlo_pi" });
  // Tasks of ~0.1-0.2 s on two one-worker agents: about a minute of work, several times what
  // replacing both agents takes (each new agent starts, registers and is READY in seconds).
  // The tasks cycle through 20 distinct inputs, so checking all 800 results against the plain-JS
  // reference costs 20 reference runs, not 800.
  const N = 800;
  const distinct = example.makeTasks({ tasks: 20, size: 20 * 10_000_000 });
  const inputs = Array.from({ length: N }, (_, i) => distinct[i % distinct.length]!);
  const { jobId } = await t.client.submitJob({ kernelId, inputs, name: "rolling" });
  const events: Ev[] = [];
  const done = t.client.waitForJob(jobId, (ev) => {
    if (ev.task) events.push({ index: ev.task.taskIndex, state: ev.task.state, node: ev.task.nodeId, attempt: ev.task.attempt });
  });
  let finished = false;
  void done.then(() => (finished = true), () => (finished = true));
  const succeeded = () => events.filter((e) => e.state === "TASK_STATE_SUCCEEDED").length;

  const upgraded: { nodeId: string; from: number }[] = [];
  for (const i of [0, 1]) {
    const name = `agent-${i}`;
    const nodeId = nodeOf.get(name)!;
    // Some work done since the previous step, so each step happens while the job runs.
    const mark = succeeded();
    await until(`progress before upgrading ${name}`, async () => succeeded() >= mark + 5 || finished, 120_000);
    expect(finished, `the job finished before ${name} was upgraded: make it longer`).toBe(false);
    // Drain: SIGTERM; the old agent finishes what it holds and exits 0.
    procs[i]!.child.kill("SIGTERM");
    expect(await procs[i]!.exited).toBe(0);
    // Replace and rejoin: the new release on the same data dir is the same node, READY, version 0.2.0.
    procs[i] = c.startAgent(i, agentArgs(i), next.entry);
    await until(
      `${name} back with version 0.2.0`,
      async () => (await t.client.listNodes()).some((n) => n.nodeId === nodeId && n.state === "NODE_STATE_READY" && n.agentVersion === "0.2.0"),
      120_000,
    );
    upgraded.push({ nodeId, from: events.length });
  }
  const job = await done;
  // The job outlasted both replacements, and each new agent took work of it.
  for (const u of upgraded) expect(events.slice(u.from).some((e) => e.node === u.nodeId && e.state === "TASK_STATE_SUCCEEDED")).toBe(true);

  expect(job.state).toBe("JOB_STATE_SUCCEEDED");
  expect(job.retries).toBe(0); // the draining agents finished what they held: nothing was re-placed
  expect(events.filter((e) => e.state === "TASK_STATE_FAILED")).toEqual([]);
  const results = await t.client.getResults(jobId);
  expect(results).toHaveLength(N);
  expect(new Set(results.map((r) => r.taskIndex)).size).toBe(N);
  expect(results.every((r) => r.attempt === 1)).toBe(true);
  const expected = distinct.map((input) => Buffer.from(example.reference(input)));
  for (const r of results) expect(Buffer.from(r.output)).toEqual(expected[r.taskIndex % distinct.length]);
  const after = await t.client.listNodes();
  expect(after.map((n) => [n.nodeId, n.state, n.agentVersion]).sort()).toEqual([...nodeOf.values()].map((id) => [id, "NODE_STATE_READY", "0.2.0"]).sort());
});
