// Sharing the machine (issue #15, item 5) with real load: a local cluster of real processes, and
// a CPU burner started by the test on the core of the agent that shares its host politely
// (--max-host-load). New work must go elsewhere, its unstarted tasks must be given back and
// complete elsewhere, it must take work again once the burner stops, and nothing may be lost or
// run twice. The agents measure load on the cores they may run on (taskset), so the polite agent is
// pinned to core 0 with the burner, everything else the test starts to core 1.
//
// It measures reactions to CPU load, so other test files running beside it would be load it did
// not plan: like the placement contention cases it runs only alone (scripts/test.sh's solo pass,
// DISTX_E2E_CONTENTION=1), and needs two cores.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { availableParallelism } from "node:os";
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

/** A process spinning on one core: the host's own work, as far as the agent there can tell. */
function burner(cpu: number): ChildProcess {
  const child = spawn("taskset", ["-c", String(cpu), process.execPath, "-e", "for(;;){}"], { stdio: "ignore" });
  children.push(child);
  return child;
}

it.skipIf(!CONTENTION || availableParallelism() < 2)(
  "places around an agent whose host gets busy, takes its queued tasks back, and uses it again when the load goes",
  { timeout: 180_000 },
  async () => {
    t = await startTestCluster("sharing-host-load", {
      schedulerArgs: ["--heartbeat-interval-ms", "200", "--agent-timeout-ms", "5000", "--drain-grace-ms", "2000"],
      agentArgs: (i) => ["--labels", `agent=a${i}`, ...(i === 0 ? ["--max-host-load", "0.3", "--host-load-grace-ms", "1000"] : [])],
    });
    const c = t;
    const nodes = await c.client.listNodes();
    const polite = nodes.find((n) => n.profile?.labels?.agent === "a0")!.nodeId;
    const other = nodes.find((n) => n.profile?.labels?.agent === "a1")!.nodeId;
    const proc = (name: string) => c.cluster.processes.find((p) => p.name === name)!.child.pid!;
    pin(proc("agent-0"), 0);
    for (const pid of [proc("agent-1"), proc("scheduler"), process.pid]) pin(pid, 1);
    const schedulerLog: { event: string; nodeId?: string; reason?: string; tasks?: number }[] = [];
    createInterface({ input: c.cluster.processes.find((p) => p.name === "scheduler")!.child.stdout! }).on("line", (line) => {
      if (line.includes('"tasks_taken_back"') || line.includes('"node_backing_off"')) schedulerLog.push(JSON.parse(line) as (typeof schedulerLog)[number]);
    });
    const backingOff = async () => (await c.client.listNodes()).find((n) => n.nodeId === polite)!.backingOff;
    // Before any load of ours, the polite agent's core is quiet enough to take work.
    await until("agent a0 not backing off before the test loads its core", async () => (await backingOff()) === "", 15_000);

    const example = getExampleKernel("montecarlo_pi");
    const { kernelId } = await c.client.registerKernel(await exampleWasm("montecarlo_pi"), { name: "montecarlo_pi" });
    // ~150 ms tasks on two one-worker agents: long enough that a0 holds queued tasks when it backs off.
    const inputs = example.makeTasks({ tasks: 80, size: 80 * 8_000_000 });
    const { jobId } = await c.client.submitJob({ kernelId, inputs, name: "shared" });
    const events: { at: number; index: number; state: string; node: string; attempt: number }[] = [];
    let burnerStarted = 0;
    const done = c.client.waitForJob(jobId, (ev: JobEvent) => {
      if (!ev.task) return;
      events.push({ at: Date.now(), index: ev.task.taskIndex, state: ev.task.state, node: ev.task.nodeId, attempt: ev.task.attempt });
      // Once a0 has finished some work, its host gets busy.
      if (!burnerStarted && events.filter((e) => e.state === "TASK_STATE_SUCCEEDED" && e.node === polite).length >= 3) {
        burnerStarted = Date.now();
        burner(0);
      }
    });
    await until("agent a0 backing off under the burner", async () => burnerStarted > 0 && (await backingOff()) !== "", 30_000);
    const backedOffSeen = Date.now();
    const job = await done;

    // Nothing lost, nothing run twice: every task succeeded once, with a correct result, and the
    // tasks given back used no attempt.
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    const results = await c.client.getResults(jobId);
    expect(results).toHaveLength(80);
    expect(new Set(results.map((r) => r.taskIndex)).size).toBe(80);
    for (const r of results) expect(Buffer.from(r.output)).toEqual(Buffer.from(example.reference(inputs[r.taskIndex]!)));
    const succeeded = events.filter((e) => e.state === "TASK_STATE_SUCCEEDED");
    expect(succeeded).toHaveLength(80);
    expect(results.every((r) => r.attempt === 1)).toBe(true);
    expect(job.retries).toBe(0);

    // New work went elsewhere: nothing was placed on a0 once the scheduler knew it backed off
    // (500 ms for placements decided before that and still on their way to this watch).
    const placedOnPoliteLater = events.filter((e) => e.state === "TASK_STATE_ASSIGNED" && e.node === polite && e.at > backedOffSeen + 500);
    expect(placedOnPoliteLater).toEqual([]);
    // Its queued tasks were given back, and they completed on the other agent.
    const takenBack = schedulerLog.filter((l) => l.event === "tasks_taken_back" && l.nodeId === polite && l.reason?.startsWith("host load"));
    expect(takenBack.length).toBeGreaterThanOrEqual(1);
    const assignedToPolite = new Set(events.filter((e) => e.state === "TASK_STATE_ASSIGNED" && e.node === polite).map((e) => e.index));
    const movedAndDone = results.filter((r) => assignedToPolite.has(r.taskIndex) && r.nodeId === other);
    expect(movedAndDone.length).toBeGreaterThanOrEqual(1);
    expect(schedulerLog.some((l) => l.event === "node_backing_off" && l.nodeId === polite)).toBe(true);

    // The load goes away: a0 stops backing off and takes work again.
    for (const b of children) b.kill("SIGKILL");
    await until("agent a0 taking work again after the burner stopped", async () => (await backingOff()) === "", 30_000);
    const again = example.makeTasks({ tasks: 20, size: 20 * 8_000_000 });
    const second = await c.client.run({ kernelId, inputs: again, name: "after" });
    expect(second.job.state).toBe("JOB_STATE_SUCCEEDED");
    expect(second.results.filter((r) => r.nodeId === polite).length).toBeGreaterThanOrEqual(1);
  },
);
