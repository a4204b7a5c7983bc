// A niced agent registers as niced (HardwareProfile.niced, issue #14) and the scheduler models its
// node as yielding to the host's own load; an agent at normal priority is not. Real processes: a
// scheduler started with `--placement finish-time` (so its policy metric is checked on a real
// process too) and two agents whose main thread's nice value the test sets right after spawning,
// long before they profile the host (after loading and reading the host). ListNodes shows what the
// scheduler stored; its /metrics what placement's load models use.
import os from "node:os";
import { afterAll, expect, it } from "vitest";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";
import { until } from "../../helpers/poll.js";

let t: TestCluster | undefined;
afterAll(async () => {
  await t?.stop();
});

/** Whether this process may set a child's nice value to `nice` (lowering it below ours needs root). */
const canSet = (nice: number) => nice >= os.getPriority() || process.getuid?.() === 0;

it("the scheduler sees a niced agent as yielding to its host's load, and an agent at normal priority as not", { timeout: 120_000 }, async () => {
  t = await startTestCluster("niced-registration", {
    agents: 0,
    schedulerArgs: ["--heartbeat-interval-ms", "200", "--agent-timeout-ms", "5000", "--drain-grace-ms", "1000", "--placement", "finish-time"],
  });
  const c = t;
  // The first agent at nice 10; the second at 0 when we may (root, or a test run at normal priority).
  const wanted: [string, number][] = [["niced", 10], ...(canSet(0) ? [["normal", 0] as [string, number]] : [])];
  for (const [i, [label, nice]] of wanted.entries()) {
    const proc = c.cluster.startAgent(i, ["--labels", `agent=${label}`, "--no-calibrate"]);
    os.setPriority(proc.child.pid!, nice);
  }
  const nodes = await until("agents to register", async () => {
    const list = await c.client.listNodes();
    return list.length === wanted.length && list;
  });
  const admin = await c.cluster.adminAddress("scheduler");
  const metrics = await until("the yields gauge for every node", async () => {
    const text = await (await fetch(`http://${admin}/metrics`)).text();
    return nodes.every((n) => text.includes(`distx_node_yields_to_host{node="${n.nodeId}"}`)) && text;
  });
  expect(metrics).toContain('distx_placement_policy{policy="finish-time"} 1');
  for (const [label, nice] of wanted) {
    const node = nodes.find((n) => n.profile?.labels?.agent === label)!;
    expect(node, label).toBeDefined();
    expect(node.profile?.niced, `${label} agent at nice ${nice}`).toBe(nice > 0);
    expect(metrics).toContain(`distx_node_yields_to_host{node="${node.nodeId}"} ${nice > 0 ? 1 : 0}`);
  }
});
