// Sharing the machine (issue #15, item 5) under real load: a local cluster of real processes, and
// a CPU burner (not DistributeX) started by the test on the core of the agent that shares its host
// politely (--max-host-load, --give-back-host-load). The polite agent must back off (ListNodes says
// so), the tasks it holds queued must be given back and finish on the other agent without using an
// attempt, nothing may be lost or run twice, and it must take work again once the burner stops.
//
// The agents measure load on the cores they may run on (taskset), so the polite agent is pinned to
// core 0 with the burner, and everything else the test starts to core 1. Niced work counts as idle
// to an agent at normal priority (agent/load-sampler.ts), so the polite agent and the burner run at
// nice 0 even when the test itself runs niced (as on a shared development machine; that needs
// root): other niced work on core 0 is then no load it reacts to.
//
// It measures reactions to CPU load, so other test files running beside it (not niced) would be
// load it did not plan: like the placement contention cases it runs only alone (scripts/test.sh's
// solo pass, DISTX_E2E_CONTENTION=1), and needs two cores. Its waits are on states (ListNodes, the
// job's event stream, the scheduler's log), with generous bounds; nothing asserts how fast.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readdirSync } from "node:fs";
import os, { availableParallelism } from "node:os";
import { createInterface } from "node:readline";
import { afterAll, expect, it } from "vitest";
import type { JobEvent } from "../../../client/index.js";
import { getExampleKernel } from "../../../kernels/reference/index.js";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";
import { exampleWasm } from "../../helpers/fixtures.js";
import { until } from "../../helpers/poll.js";

const CONTENTION = process.env.DISTX_E2E_CONTENTION === "1";
const children: ChildProcess[] = [];
let t: TestCluster | undefined;

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  spawnSync("taskset", ["-a", "-p", "-c", `0-${availableParallelism() - 1}`, String(process.pid)], { stdio: "ignore" });
  await t?.stop();
});

function pin(pid: number, cpu: number): void {
  const r = spawnSync("taskset", ["-a", "-p", "-c", String(cpu), String(pid)], { stdio: "ignore" });
  if (r.status !== 0) throw new Error(`taskset could not pin pid ${pid} to core ${cpu}`);
}

/** Every thread of `pid` at nice 0 (nice is per thread on Linux: each one in /proc/<pid>/task). */
function unnice(pid: number): void {
  for (const tid of readdirSync(`/proc/${pid}/task`)) os.setPriority(Number(tid), 0);
}

/** A process spinning on one core at normal priority: the host's own work, as far as the agent there can tell. */
function burner(cpu: number): ChildProcess {
  const child = spawn("taskset", ["-c", String(cpu), process.execPath, "-e", "for(;;){}"], { stdio: "ignore" });
  children.push(child);
  unnice(child.pid!);
  return child;
}

type Ev = { index: number; state: string; node: string; attempt: number };

// Skips unless DISTX_E2E_CONTENTION=1 (scripts/test.sh sets it in the solo pass, where a CPU burner
// disturbs no other file) and there are two cores: the polite agent and the other one need a core each.
it.skipIf(!CONTENTION || availableParallelism() < 2)(
  "places around an agent whose host gets busy, gives its queued tasks back, and uses it again when the load goes",
  { timeout: 300_000 },
  async () => {
    t = await startTestCluster("sharing-host-load", {
      schedulerArgs: ["--heartbeat-interval-ms", "200", "--agent-timeout-ms", "10000", "--drain-grace-ms", "2000"],
      agentArgs: (i) => ["--labels", `agent=a${i}`, ...(i === 0 ? ["--max-host-load", "0.3", "--give-back-host-load", "0.3", "--host-load-grace-ms", "1000"] : [])],
    });
    const c = t;
    const nodes = await c.client.listNodes();
    const polite = nodes.find((n) => n.profile?.labels?.agent === "a0")!.nodeId;
    const other = nodes.find((n) => n.profile?.labels?.agent === "a1")!.nodeId;
    const proc = (name: string) => c.cluster.processes.find((p) => p.name === name)!.child;
    pin(proc("agent-0").pid!, 0);
    if (os.getPriority() > 0) unnice(proc("agent-0").pid!);
    for (const pid of [proc("agent-1").pid!, proc("scheduler").pid!, process.pid]) pin(pid, 1);
    const schedulerLog: { event: string; nodeId?: string; reason?: string; tasks?: number }[] = [];
    createInterface({ input: proc("scheduler").stdout! }).on("line", (line) => {
      if (line.includes('"tasks_taken_back"') || line.includes('"node_backing_off"')) schedulerLog.push(JSON.parse(line) as (typeof schedulerLog)[number]);
    });
    const politeNode = async () => (await c.client.listNodes()).find((n) => n.nodeId === polite)!;
    // Before any load of ours, the polite agent's core is quiet enough to take work: a few samples
    // after the pinning (not the empty first answer of a node that has sent none yet), and not
    // backing off. If this fails, something else (not niced) keeps core 0 busy: run the test alone.
    const pinnedAt = Date.now();
    await until(
      "agent a0 on a quiet core, not backing off, before the test loads it",
      async () => {
        const n = await politeNode();
        return n.backingOff === "" && !!n.load && n.load.sampledAtMs > pinnedAt + 2000 && n.load.cpuUtilization - n.load.agentCpuUtilization < 0.3;
      },
      60_000,
    );

    const example = getExampleKernel("montecarlo_pi");
    const { kernelId } = await c.client.registerKernel(await exampleWasm("montecarlo_pi"), { name: "montecarlo_pi" });
    // Tasks of about a second on two one-worker agents: each holds one running and two queued
    // (capacity = workers × (1 + prefetch)), and under the burner a0's queued ones wait seconds.
    const N = 24;
    const inputs = example.makeTasks({ tasks: N, size: N * 48_000_000 });
    const { jobId } = await c.client.submitJob({ kernelId, inputs, name: "shared" });
    const events: Ev[] = [];
    let burnerOn = false;
    let givenBackSeen = -1; // index in `events` of the first task a0 gave back (PENDING again, same attempt)
    let burnerOff = Number.POSITIVE_INFINITY; // index in `events` when the burner stopped
    const heldBy = new Map<number, Ev>();
    const done = c.client.waitForJob(jobId, (ev: JobEvent) => {
      if (!ev.task) return;
      const e: Ev = { index: ev.task.taskIndex, state: ev.task.state, node: ev.task.nodeId, attempt: ev.task.attempt };
      const before = heldBy.get(e.index);
      events.push(e);
      if (e.state === "TASK_STATE_PENDING" && before?.state === "TASK_STATE_ASSIGNED" && before.node === polite && before.attempt === e.attempt && givenBackSeen < 0) givenBackSeen = events.length - 1;
      heldBy.set(e.index, e);
      // Once a0 runs a task and holds another one queued behind it, its host gets busy.
      const onPolite = [...heldBy.values()].filter((x) => x.node === polite);
      if (!burnerOn && onPolite.some((x) => x.state === "TASK_STATE_RUNNING") && onPolite.some((x) => x.state === "TASK_STATE_ASSIGNED")) {
        burnerOn = true;
        burner(0);
      }
    });
    await until("agent a0 backing off under the burner", async () => burnerOn && (await politeNode()).backingOff !== "", 60_000);
    expect((await politeNode()).state).toBe("NODE_STATE_READY"); // backing off is not draining nor down
    const job = await done;

    // Nothing lost, nothing run twice: every task succeeded once with a correct result, on its
    // first attempt; the tasks given back used none.
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    const results = await c.client.getResults(jobId);
    expect(results).toHaveLength(N);
    expect(new Set(results.map((r) => r.taskIndex)).size).toBe(N);
    for (const r of results) expect(Buffer.from(r.output)).toEqual(Buffer.from(example.reference(inputs[r.taskIndex]!)));
    expect(events.filter((e) => e.state === "TASK_STATE_SUCCEEDED")).toHaveLength(N);
    expect(events.filter((e) => e.state === "TASK_STATE_FAILED")).toEqual([]);
    expect(results.every((r) => r.attempt === 1)).toBe(true);
    expect(job.retries).toBe(0);

    // The scheduler saw a0 back off and took its queued tasks back for its host's load.
    expect(schedulerLog.some((l) => l.event === "node_backing_off" && l.nodeId === polite)).toBe(true);
    const takenBack = schedulerLog.filter((l) => l.event === "tasks_taken_back" && l.nodeId === polite && l.reason?.startsWith("host load"));
    expect(takenBack.length).toBeGreaterThanOrEqual(1);
    // In the job's own event stream: a task assigned to a0 came back to PENDING on the same
    // attempt (given back, not failed) ...
    expect(givenBackSeen).toBeGreaterThanOrEqual(0);
    const givenBack = new Set<number>();
    const last = new Map<number, Ev>();
    for (const e of events) {
      const prev = last.get(e.index);
      if (e.state === "TASK_STATE_PENDING" && prev?.state === "TASK_STATE_ASSIGNED" && prev.node === polite && prev.attempt === e.attempt) givenBack.add(e.index);
      last.set(e.index, e);
    }
    // ... and every task given back finished on the other agent.
    for (const i of givenBack) expect(results.find((r) => r.taskIndex === i)!.nodeId).toBe(other);
    // After the give-back (a0 was backing off by then) and while the burner ran, nothing new went to a0.
    expect(events.slice(givenBackSeen).filter((e, k) => givenBackSeen + k < burnerOff && e.state === "TASK_STATE_ASSIGNED" && e.node === polite)).toEqual([]);

    // The load goes away: a0 stops backing off and takes work again.
    burnerOff = events.length;
    for (const b of children) b.kill("SIGKILL");
    await until("agent a0 taking work again after the burner stopped", async () => (await politeNode()).backingOff === "", 60_000);
    const again = example.makeTasks({ tasks: 12, size: 12 * 8_000_000 });
    const second = await c.client.run({ kernelId, inputs: again, name: "after" });
    expect(second.job.state).toBe("JOB_STATE_SUCCEEDED");
    expect(second.results.filter((r) => r.nodeId === polite).length).toBeGreaterThanOrEqual(1);
  },
);
