// End to end placement: real scheduler and agent processes, real gRPC, real CPU contention.
// These tests measure CPU load on pinned cores, so `npm test` runs this file alone, after the
// others (on a 2-core machine, parallel test files would be the background load).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { availableParallelism } from "node:os";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, it } from "vitest";
import { getExampleKernel } from "../../kernels/reference/index.js";
import { startTestCluster, type TestCluster } from "../helpers/cluster.js";
import { exampleWasm } from "../helpers/fixtures.js";

// The two CPU-contention tests measure reactions to CPU load, so other test files running beside
// them on 2 cores would be load they did not plan: they run only when the file runs alone, as
// scripts/test.sh (npm test) does, which sets DISTX_E2E_CONTENTION=1 for that solo run.
const CONTENTION = process.env.DISTX_E2E_CONTENTION === "1";

let t: TestCluster | undefined;
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
  // This test process may have been pinned (see the background-load test): give it every core back.
  spawnSync("taskset", ["-a", "-p", "-c", `0-${availableParallelism() - 1}`, String(process.pid)], { stdio: "ignore" });
  await t?.stop();
  t = undefined;
});

const HEARTBEAT = ["--heartbeat-interval-ms", "200", "--agent-timeout-ms", "3000", "--drain-grace-ms", "2000"];

async function runPi(c: TestCluster, tasks: number, samplesPerTask: number) {
  const example = getExampleKernel("montecarlo_pi");
  const { kernelId } = await c.client.registerKernel(await exampleWasm("montecarlo_pi"), { name: "montecarlo_pi" });
  const inputs = example.makeTasks({ tasks, size: tasks * samplesPerTask });
  const { job, results } = await c.client.run({ kernelId, inputs, name: "pi" });
  expect(job.state).toBe("JOB_STATE_SUCCEEDED");
  for (const r of results) expect(Buffer.from(r.output)).toEqual(Buffer.from(example.reference(inputs[r.taskIndex]!)));
  const perNode = new Map<string, number>();
  for (const r of results) perNode.set(r.nodeId, (perNode.get(r.nodeId) ?? 0) + 1);
  return perNode;
}

async function nodeIdByAgent(c: TestCluster): Promise<Map<string, string>> {
  const nodes = await c.client.listNodes();
  return new Map(nodes.map((n) => [n.profile?.labels?.agent ?? "", n.nodeId]));
}

/** A CPU-burning process pinned to one core; duty cycle (0..1) ramps linearly over rampMs. */
function burner(cpu: number, rampMs = 0): ChildProcess {
  const code = `const t0=Date.now(),r=${rampMs};for(;;){const d=r?Math.min(1,(Date.now()-t0)/r):1;const s=Date.now();while(Date.now()-s<10*d);const p=10*(1-d);if(p>0)Atomics.wait(new Int32Array(new SharedArrayBuffer(4)),0,0,p);}`;
  const child = spawn("taskset", ["-c", String(cpu), process.execPath, "-e", code], { stdio: "ignore" });
  children.push(child);
  return child;
}

/** Pins every thread of a process to one core; waits for taskset so the pin is in place on return. */
function pin(pid: number, cpu: number): void {
  const r = spawnSync("taskset", ["-a", "-p", "-c", String(cpu), String(pid)], { stdio: "ignore" });
  if (r.status !== 0) throw new Error(`taskset could not pin pid ${pid} to core ${cpu}`);
}

describe("forecast placement across real agents", () => {
  // Skipped beside other test files (their CPU load would be load this test did not plan); npm test
  // runs it in its solo pass with DISTX_E2E_CONTENTION=1. See CONTENTION above.
  it.skipIf(!CONTENTION)("raises predicted_saturation before the agent's cores saturate", { timeout: 120_000 }, async () => {
    t = await startTestCluster("placement-saturation", {
      agents: 1,
      schedulerArgs: ["--heartbeat-interval-ms", "500", "--agent-timeout-ms", "5000", "--drain-grace-ms", "2000", "--saturation-threshold", "0.9", "--saturation-horizon-ms", "5000", "--saturation-cooldown-ms", "0"],
      agentArgs: () => ["--labels", "agent=a0"],
    });
    const [id] = (await nodeIdByAgent(t)).values();
    const agent = t.cluster.processes.find((p) => p.name === "agent-0")!;
    pin(agent.child.pid!, 1);
    // Watch the scheduler's JSON log lines as they are written.
    const events: { receivedAt: number; scope: string; nodeId?: string; etaMs: number; threshold: number }[] = [];
    const scheduler = t.cluster.processes.find((p) => p.name === "scheduler")!;
    createInterface({ input: scheduler.child.stdout! }).on("line", (line) => {
      if (!line.includes('"predicted_saturation"')) return;
      events.push({ receivedAt: Date.now(), ...(JSON.parse(line) as { scope: string; nodeId?: string; etaMs: number; threshold: number }) });
    });
    await new Promise((r) => setTimeout(r, 20_000)); // a calm baseline: 40 samples for the forecaster
    burner(1, 20_000);
    const rampStart = Date.now();
    const trace: number[] = [];
    let saturatedAt = 0;
    const deadline = Date.now() + 40_000;
    while (Date.now() < deadline && !saturatedAt) {
      const n = (await t.client.listNodes()).find((x) => x.nodeId === id);
      const u = n?.load?.cpuUtilization ?? 0;
      trace.push(Math.round(u * 100));
      // Sustained saturation (three polls in a row), so one noisy sample does not count.
      if (trace.length >= 3 && trace.slice(-3).every((x) => x >= 90)) saturatedAt = Date.now();
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(saturatedAt).toBeGreaterThan(0);
    const forNode = events.filter((e) => e.scope === "node" && e.nodeId === id && e.receivedAt > rampStart);
    if (forNode.length === 0) console.error("utilisation % during the ramp:", trace.join(" "), "events:", JSON.stringify(events));
    expect(forNode.length).toBeGreaterThanOrEqual(1);
    expect(forNode[0]!.receivedAt).toBeLessThan(saturatedAt);
    expect(forNode[0]!.threshold).toBe(0.9);
  });

  it("gives the faster agent proportionally more of a job", async () => {
    // One agent at a time: each calibrates at start-up, and two calibrating at once on 2 cores
    // measured the fast one 1.5x slow in one CI run (ratio 1.98 where 2.94 is ideal).
    t = await startTestCluster("placement-speed", {
      agents: 1,
      schedulerArgs: HEARTBEAT,
      agentArgs: (i) => ["--labels", `agent=a${i}`, ...(i === 1 ? ["--speed-factor", "0.34"] : [])],
    });
    t.cluster.startAgent(1);
    await t.cluster.waitForNodes(2);
    const ids = await nodeIdByAgent(t);
    const nodes = await t.client.listNodes();
    const speed = (id: string) => nodes.find((n) => n.nodeId === id)!.profile!.calibration!.opsPerSecond;
    // The speed factor is real: calibration measures the slowed workers.
    expect(speed(ids.get("a0")!) / speed(ids.get("a1")!)).toBeGreaterThan(2);
    const perNode = await runPi(t, 60, 3_000_000);
    const fast = perNode.get(ids.get("a0")!) ?? 0;
    const slow = perNode.get(ids.get("a1")!) ?? 0;
    expect(fast + slow).toBe(60);
    expect(fast / Math.max(1, slow)).toBeGreaterThan(1.8);
  });

  // Solo pass only, like the saturation test above.
  it.skipIf(!CONTENTION)("steers new tasks away from an agent whose core is busy with another process", async () => {
    t = await startTestCluster("placement-background", {
      schedulerArgs: HEARTBEAT,
      agentArgs: (i) => ["--labels", `agent=a${i}`],
    });
    const ids = await nodeIdByAgent(t);
    const agents = t.cluster.processes.filter((p) => p.name.startsWith("agent-"));
    pin(agents[0]!.child.pid!, 0);
    pin(agents[1]!.child.pid!, 1);
    // The agents measure load on the cores they may run on, so core 1 must really be free of
    // other work: left unpinned, the scheduler (TLS on every call) and this test process (the
    // client) drift onto core 1 as soon as the burner fills core 0, and agent a1 then sees them
    // as background load of its own. They go on the busy core, with the burner.
    pin(t.cluster.processes.find((p) => p.name === "scheduler")!.child.pid!, 0);
    pin(process.pid, 0);
    burner(0);
    await new Promise((r) => setTimeout(r, 3000)); // a few heartbeats of the new load
    const perNode = await runPi(t, 40, 10_000_000);
    const busy = perNode.get(ids.get("a0")!) ?? 0;
    const free = perNode.get(ids.get("a1")!) ?? 0;
    // The burner takes half the core, so 2:1 is the ideal split; observed 22–26 : 14–18 on a
    // 2-core VM (each agent holds 3 tasks at once, which bounds how far a 40-task job can skew).
    expect(free).toBeGreaterThanOrEqual(busy * 1.2);
  });

});
