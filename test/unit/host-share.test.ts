// Sharing the machine (issue #15, item 5), the parts that need no processes: the agent's backing-off
// policy, and what the scheduler core does with a node that backs off (a real core with in-memory
// backends, nodes whose "sessions" record what they are sent). A real-load end-to-end run is not in
// the suite yet (docs/operations.md says why).
import { describe, expect, it } from "vitest";
import { BACK_OFF_AFTER, HostShare, RESUME_AFTER, hostLoadOf } from "../../agent/host-share.js";
import { loadConfig, schedulerConfigSchema, agentConfigSchema } from "../../common/config.js";
import { createLogger } from "../../common/logger.js";
import type { HardwareProfile, SchedulerMessageIn } from "../../common/types.js";
import { MemoryStateStore, MemoryTaskQueue } from "../../scheduler/backends/memory.js";
import { SchedulerCore } from "../../scheduler/core.js";
import { NodeRegistry } from "../../scheduler/registry.js";
import { explainFeasibility, PlacementMetrics, feasibleNodes } from "../../scheduler/placement/index.js";
import { wasmNeeds } from "../helpers/placement.js";

describe("the agent's backing-off policy", () => {
  it("backs off only after samples in a row over the maximum, and resumes only below it minus the hysteresis", () => {
    const share = new HostShare({ maxHostLoad: 0.5, hostLoadGraceMs: 10_000 });
    // One busy sample is not a trend.
    expect(share.observe(0.9, 0).backingOff).toBe("");
    expect(share.observe(0.1, 1).backingOff).toBe("");
    let v = share.observe(0.9, 2);
    for (let i = 1; i < BACK_OFF_AFTER; i++) v = share.observe(0.9, 3 + i);
    expect(v.backingOff).toBe("host load 90% over max 50%");
    expect(v.giveBack).toBe(false);
    // Just under the maximum is inside the hysteresis band: still backing off.
    for (let i = 0; i < RESUME_AFTER + 2; i++) expect(share.observe(0.45, 10 + i).backingOff).not.toBe("");
    for (let i = 0; i < RESUME_AFTER - 1; i++) expect(share.observe(0.2, 20 + i).backingOff).not.toBe("");
    expect(share.observe(0.2, 30).backingOff).toBe("");
    expect(share.backingOff).toBe(false);
  });

  it("gives back after the grace, or at once over the second threshold", () => {
    const graceful = new HostShare({ maxHostLoad: 0.5, hostLoadGraceMs: 1000 });
    for (let i = 0; i < BACK_OFF_AFTER; i++) graceful.observe(0.7, 100);
    expect(graceful.observe(0.7, 500).giveBack).toBe(false);
    expect(graceful.observe(0.7, 1100).giveBack).toBe(true);
    const sharp = new HostShare({ maxHostLoad: 0.5, giveBackHostLoad: 0.8, hostLoadGraceMs: 60_000 });
    for (let i = 0; i < BACK_OFF_AFTER; i++) sharp.observe(0.7, 0);
    expect(sharp.observe(0.7, 1).giveBack).toBe(false);
    expect(sharp.observe(0.95, 2).giveBack).toBe(true);
  });

  it("never backs off without maxHostLoad, and counts the host's load as all use minus the agent's", () => {
    const off = new HostShare({ hostLoadGraceMs: 0 });
    for (let i = 0; i < 10; i++) expect(off.observe(1, i)).toEqual({ backingOff: "", giveBack: false, hostLoad: 1 });
    expect(hostLoadOf({ cpuUtilization: 0.9, agentCpuUtilization: 0.6 })).toBeCloseTo(0.3);
    expect(hostLoadOf({ cpuUtilization: 0.2, agentCpuUtilization: 0.3 })).toBe(0);
  });

  it("takes its settings from flags, env or file, and refuses a load over 1 naming the setting", () => {
    const c = loadConfig(agentConfigSchema, { section: "agent", env: { DISTX_MAX_HOST_LOAD: "0.6" }, flags: { reserveCores: "1", hostLoadGraceMs: "500" } });
    expect([c.reserveCores, c.maxHostLoad, c.giveBackHostLoad, c.hostLoadGraceMs]).toEqual([1, 0.6, undefined, 500]);
    expect(() => loadConfig(agentConfigSchema, { section: "agent", env: {}, flags: { maxHostLoad: "60" } })).toThrow(/maxHostLoad.*≤ 1/);
  });
});

const KERNEL = "ab".repeat(32);
const profile = { hostname: "h", workers: 1, cpu: { model: "x", logicalCores: 1 }, memoryBytes: String(2 ** 33), gpus: [], kernelKinds: ["KERNEL_KIND_WASM"], labels: {} } as unknown as HardwareProfile;
const turn = () => new Promise((r) => setImmediate(r));
const load = { cpuUtilization: 0.9, agentCpuUtilization: 0.1, memoryUsedBytes: "0", runningTasks: 0, queuedTasks: 0, gpuUtilization: -1, sampledAtMs: 0 };

describe("the scheduler places around a node that backs off", () => {
  it("sends it nothing new, takes back its unstarted tasks when it asks, places them elsewhere without using an attempt, and uses it again once it stops", async () => {
    const config = loadConfig(schedulerConfigSchema, { section: "scheduler", env: {}, flags: { resultCacheTtlS: 0, heartbeatIntervalMs: 50, rebalance: false } });
    const registry = new NodeRegistry({ agentTimeoutMs: 60_000, prefetchPerWorker: 2 });
    const store = new MemoryStateStore();
    await store.putKernel({ kernelId: KERNEL, name: "k", kind: "KERNEL_KIND_WASM", entry: "run", abi: "distx-1", sizeBytes: 1, registeredAtMs: 0, module: Buffer.from([0]) });
    const core = new SchedulerCore(config, registry, store, new MemoryTaskQueue(), createLogger("test", "silent"));
    core.resultCache = false;

    const shared: SchedulerMessageIn[] = [];
    const polite = registry.register(profile, "polite", "0.1.0", 1);
    registry.attachSession(polite.id, (m) => shared.push(m));
    const job = await core.submit({ kernelId: KERNEL, inputs: Array.from({ length: 6 }, (_, i) => Buffer.from([i])), needs: {}, priority: 0, timeoutMs: 0, maxAttempts: 1, name: "" });
    await turn();
    const first = shared.filter((m) => m.assign).map((m) => m.assign!.taskIndex);
    expect(first).toEqual([0, 1, 2]); // one worker, prefetch 2

    // The host gets busy: the node is not ready, and placement says why.
    registry.heartbeat(polite.id, load, false, "host load 80% over max 50%");
    expect(polite.ready).toBe(false);
    expect(registry.toProto(polite).backingOff).toBe("host load 80% over max 50%");
    const metrics = new PlacementMetrics();
    feasibleNodes(wasmNeeds(), [polite], metrics);
    expect(metrics.filtered.get("polite")).toEqual({ check: "state", detail: "backing off: host load 80% over max 50%" });
    // A job's unschedulable reason judges it as if it stopped: it could take the job later.
    expect(explainFeasibility(wasmNeeds(), [polite]).reason).toBe("");

    // A second node joins: the rest go there, nothing new to the backing-off one.
    const other: SchedulerMessageIn[] = [];
    const busy = registry.register({ ...profile, workers: 4 } as HardwareProfile, "other", "0.1.0");
    registry.attachSession(busy.id, (m) => other.push(m));
    await turn();
    expect(other.filter((m) => m.assign).map((m) => m.assign!.taskIndex)).toEqual([3, 4, 5]);
    expect(shared.filter((m) => m.assign)).toHaveLength(3);

    // Past its second threshold it asks for its unstarted tasks to go: task 0 has started (RUNNING), 1 and 2 have not.
    await core.onTaskUpdate(polite.id, { jobId: job.id, taskIndex: 0, attempt: 1, state: "TASK_STATE_RUNNING", output: Buffer.alloc(0), error: null, runMs: 0, waitMs: 0, backend: "" } as never);
    registry.heartbeat(polite.id, load, false, "host load 95% over max 50%", true);
    const cancels = shared.filter((m) => m.cancel).map((m) => m.cancel!);
    expect(cancels).toEqual([{ jobId: job.id, taskIndexes: [1, 2] }]);
    // Asked again at the next heartbeat: not twice while the cancels are in flight.
    registry.heartbeat(polite.id, load, false, "host load 95% over max 50%", true);
    expect(shared.filter((m) => m.cancel)).toHaveLength(1);
    // The agent answers CANCELLED for both: they are queued again, with the same attempt, and go to the other node.
    for (const i of [1, 2]) {
      await core.onTaskUpdate(polite.id, { jobId: job.id, taskIndex: i, attempt: 1, state: "TASK_STATE_CANCELLED", output: Buffer.alloc(0), error: { code: "CANCELLED", message: "taken back" }, runMs: 0, waitMs: 0, backend: "" } as never);
    }
    await turn();
    // (each goes back to the front of the queue, so their order is not asserted)
    const moved = other.filter((m) => m.assign).map((m) => ({ index: m.assign!.taskIndex, attempt: m.assign!.attempt }));
    expect(moved.sort((a, b) => (a.index ?? 0) - (b.index ?? 0))).toEqual([1, 2, 3, 4, 5].map((index) => ({ index, attempt: 1 })));

    const done = (nodeId: string, i: number) =>
      core.onTaskUpdate(nodeId, { jobId: job.id, taskIndex: i, attempt: 1, state: "TASK_STATE_SUCCEEDED", output: Buffer.from([i]), error: null, runMs: 1, waitMs: 0, backend: "wasm" } as never);
    await done(polite.id, 0); // what had started finishes where it was
    for (const i of [1, 2, 3, 4, 5]) await done(busy.id, i);
    expect(core.getJob(job.id).state).toBe("JOB_STATE_SUCCEEDED");

    // The load goes away: the node is ready again and takes the next job's work.
    registry.heartbeat(polite.id, { ...load, cpuUtilization: 0.1 }, false, "");
    expect(polite.ready).toBe(true);
    registry.markDown(busy.id, "test: gone");
    await core.submit({ kernelId: KERNEL, inputs: [Buffer.from([9])], needs: {}, priority: 0, timeoutMs: 0, maxAttempts: 1, name: "" });
    await turn();
    expect(shared.filter((m) => m.assign)).toHaveLength(4);
  });
});
