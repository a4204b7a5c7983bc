// The scheduler core's dispatch loop, driven directly (real core, real in-memory backends, a
// registered node whose "session" records what it is sent).
import { describe, expect, it } from "vitest";
import { loadConfig, schedulerConfigSchema } from "../../common/config.js";
import { createLogger } from "../../common/logger.js";
import type { HardwareProfile, SchedulerMessageIn } from "../../common/types.js";
import { MemoryStateStore, MemoryTaskQueue } from "../../scheduler/backends/memory.js";
import { SchedulerCore } from "../../scheduler/core.js";
import { NodeRegistry } from "../../scheduler/registry.js";

const KERNEL = "ab".repeat(32);
const profile = { hostname: "h", workers: 1, cpu: { model: "x", logicalCores: 1 }, memoryBytes: String(2 ** 33), gpus: [], kernelKinds: ["KERNEL_KIND_WASM"], labels: {} } as unknown as HardwareProfile;
const turn = () => new Promise((r) => setImmediate(r));

async function makeCore() {
  const config = loadConfig(schedulerConfigSchema, { section: "scheduler", env: {}, flags: { resultCacheTtlS: 0 } });
  const registry = new NodeRegistry({ agentTimeoutMs: 60_000, prefetchPerWorker: 2 });
  const store = new MemoryStateStore();
  await store.putKernel({ kernelId: KERNEL, name: "k", kind: "KERNEL_KIND_WASM", entry: "run", abi: "distx-1", sizeBytes: 1, registeredAtMs: 0, module: Buffer.from([0]) });
  const core = new SchedulerCore(config, registry, store, new MemoryTaskQueue(), createLogger("test", "silent"));
  core.resultCache = false;
  return { core, registry };
}

describe("dispatch", () => {
  it("tells the registry a node is full only when tasks are left waiting for room", async () => {
    const { core, registry } = await makeCore();
    const node = registry.register(profile);
    registry.attachSession(node.id, () => {});
    const submit = (n: number) => core.submit({ kernelId: KERNEL, inputs: Array.from({ length: n }, (_, i) => Buffer.from([i])), needs: {}, priority: 0, timeoutMs: 0, maxAttempts: 0, name: "" });
    await submit(3); // exactly its three slots (one worker, prefetch 2)
    await turn();
    expect(node.assigned).toBe(3);
    expect(node.windowBound).toBe(false);
    await submit(2); // no room: these wait
    await turn();
    expect(node.windowBound).toBe(true);
  });

  it("skips queued tasks that already ended and still fills the node (no stall after late results)", async () => {
    const { core, registry } = await makeCore();
    const job = await core.submit({ kernelId: KERNEL, inputs: Array.from({ length: 10 }, (_, i) => Buffer.from([i])), needs: {}, priority: 0, timeoutMs: 0, maxAttempts: 0, name: "" });
    // The first six go to a node that is then lost: they are queued again (attempt 2), and its
    // late results for attempt 1 arrive while they are still queued (results are accepted only
    // from the node that held that attempt): they end, but their queue entries remain.
    const lostSent: SchedulerMessageIn[] = [];
    const lost = registry.register({ ...profile, workers: 2 } as HardwareProfile);
    registry.attachSession(lost.id, (m) => lostSent.push(m));
    await turn();
    const first = lostSent.filter((m) => m.assign).map((m) => m.assign!.taskIndex ?? -1);
    expect(first).toEqual([0, 1, 2, 3, 4, 5]);
    registry.markDown(lost.id, "test: lost");
    await turn();
    for (let i = 0; i < 6; i++) {
      await core.onTaskUpdate(lost.id, { jobId: job.id, taskIndex: i, attempt: 1, state: "TASK_STATE_SUCCEEDED", output: Buffer.from([i]), error: null, runMs: 1, waitMs: 0, backend: "wasm" } as never);
    }
    const sent: SchedulerMessageIn[] = [];
    const node = registry.register(profile);
    registry.attachSession(node.id, (m) => sent.push(m));
    await turn();
    // One worker, prefetch 2: three slots, filled with three of the tasks still waiting.
    const assigned = sent.filter((m) => m.assign).map((m) => m.assign!.taskIndex ?? -1);
    expect(assigned).toEqual([6, 7, 8]);
    // Finishing them frees the slots and the last task goes out: the job completes.
    for (const i of assigned) {
      await core.onTaskUpdate(node.id, { jobId: job.id, taskIndex: i, attempt: 1, state: "TASK_STATE_SUCCEEDED", output: Buffer.from([i]), error: null, runMs: 1, waitMs: 0, backend: "wasm" } as never);
    }
    await turn();
    const last = sent.filter((m) => m.assign).map((m) => m.assign!.taskIndex ?? -1);
    expect(last).toEqual([6, 7, 8, 9]);
    await core.onTaskUpdate(node.id, { jobId: job.id, taskIndex: 9, attempt: 1, state: "TASK_STATE_SUCCEEDED", output: Buffer.from([9]), error: null, runMs: 1, waitMs: 0, backend: "wasm" } as never);
    expect(core.getJob(job.id).state).toBe("JOB_STATE_SUCCEEDED");
  });
});
