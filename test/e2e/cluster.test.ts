// End to end: a scheduler and two agents as separate processes, real gRPC over loopback.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exampleKernels, getExampleKernel } from "../../kernels/reference/index.js";
import { startTestCluster, type TestCluster } from "../helpers/cluster.js";
import { exampleWasm } from "../helpers/fixtures.js";

let t: TestCluster;

beforeAll(async () => {
  t = await startTestCluster("cluster");
});

afterAll(async () => {
  await t?.stop();
});

async function runExample(name: string, tasks: number, size?: number) {
  const example = getExampleKernel(name);
  const { kernelId } = await t.client.registerKernel(await exampleWasm(name), { name });
  const inputs = example.makeTasks({ tasks, ...(size ? { size } : {}) });
  const { job, results } = await t.client.run({ kernelId, inputs, name });
  return { example, inputs, job, results };
}

describe("a local cluster of separate processes", () => {
  it("lists both agents with their hardware profile and calibrated speed", async () => {
    const nodes = await t.client.listNodes();
    expect(nodes).toHaveLength(2);
    for (const n of nodes) {
      expect(n.state).toBe("NODE_STATE_READY");
      expect(n.profile?.cpu?.logicalCores).toBeGreaterThan(0);
      expect(n.profile?.cpu?.model).not.toBe("");
      expect(Number(n.profile?.memoryBytes)).toBeGreaterThan(0);
      expect(n.profile?.calibration?.opsPerSecond).toBeGreaterThan(1e6);
      expect(n.profile?.workers).toBe(1);
    }
  });

  it.each(Object.keys(exampleKernels))("runs %s and every result matches the plain-JS reference", async (name) => {
    const { job, inputs, results, example } = await runExample(name, 6);
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    expect(results.map((r) => r.taskIndex)).toEqual(inputs.map((_, i) => i));
    for (const r of results) {
      expect(r.state).toBe("TASK_STATE_SUCCEEDED");
      const check = example.check(inputs[r.taskIndex]!, r.output);
      expect(check.ok, check.detail).toBe(true);
    }
  });

  it("spreads tasks over both agents", async () => {
    const { results } = await runExample("mandelbrot", 24);
    const nodes = new Set(results.map((r) => r.nodeId));
    expect(nodes.size).toBe(2);
  });

  it("streams task state changes and a final job snapshot from WatchJob", async () => {
    const example = getExampleKernel("montecarlo_pi");
    const { kernelId } = await t.client.registerKernel(await exampleWasm("montecarlo_pi"));
    // Tasks long enough (10⁸ samples each) that the job is still running when the watch begins: a
    // watch that begins after the end gets the final snapshot only (the second half of this test).
    const { jobId } = await t.client.submitJob({ kernelId, inputs: example.makeTasks({ tasks: 4, size: 400_000_000 }), skipResultCache: true });
    const states: string[] = [];
    const job = await t.client.waitForJob(jobId, (ev) => ev.task && states.push(`${ev.task.taskIndex}:${ev.task.state}`));
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    for (let i = 0; i < 4; i++) expect(states).toContain(`${i}:TASK_STATE_SUCCEEDED`);
    // A watch on a finished job gets the final snapshot and ends.
    const events = [];
    for await (const ev of t.client.watchJob(jobId)) events.push(ev);
    expect(events).toHaveLength(1);
    expect(events[0]?.job?.state).toBe("JOB_STATE_SUCCEEDED");
  });

  it("reports a task that runs a while as RUNNING before its result", async () => {
    const example = getExampleKernel("montecarlo_pi");
    const { kernelId } = await t.client.registerKernel(await exampleWasm("montecarlo_pi"));
    // 5·10⁸ samples: half a second or more, far past the agent's short hold on RUNNING notes.
    const { jobId } = await t.client.submitJob({ kernelId, inputs: example.makeTasks({ tasks: 1, size: 500_000_000 }), skipResultCache: true });
    let seenRunning = false;
    for (;;) {
      const j = await t.client.getJob(jobId);
      if ((j.counts?.running ?? 0) === 1) seenRunning = true;
      if (j.state === "JOB_STATE_SUCCEEDED" || j.state === "JOB_STATE_FAILED") break;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(seenRunning).toBe(true);
    const [result] = await t.client.getResults(jobId);
    expect(result!.state).toBe("TASK_STATE_SUCCEEDED");
  });

  it("a final-only watch streams each task's outcome once and no intermediate states", async () => {
    const example = getExampleKernel("montecarlo_pi");
    const { kernelId } = await t.client.registerKernel(await exampleWasm("montecarlo_pi"));
    const { jobId } = await t.client.submitJob({ kernelId, inputs: example.makeTasks({ tasks: 6 }), skipResultCache: true });
    const states: string[] = [];
    const job = await t.client.waitForJob(jobId, (ev) => ev.task && states.push(`${ev.task.taskIndex}:${ev.task.state}`), { finalOnly: true });
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    expect(states.sort()).toEqual([0, 1, 2, 3, 4, 5].map((i) => `${i}:TASK_STATE_SUCCEEDED`));
  });

  it("cancel stops a running job's tasks on the agents, and the agents keep serving", async () => {
    const example = getExampleKernel("montecarlo_pi");
    const { kernelId } = await t.client.registerKernel(await exampleWasm("montecarlo_pi"));
    // Long tasks: each agent has one worker, so most tasks are still queued or running when cancelled.
    const { jobId } = await t.client.submitJob({ kernelId, inputs: example.makeTasks({ tasks: 8, size: 8_000_000_000 }), timeoutMs: 120_000 });
    for (;;) {
      const j = await t.client.getJob(jobId);
      if ((j.counts?.running ?? 0) > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const cancelled = await t.client.cancelJob(jobId);
    expect(cancelled.state).toBe("JOB_STATE_CANCELLED");
    // The agents stopped the running kernels (their workers were replaced) and free up at once.
    const { job } = await runExample("saxpy", 4);
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    const nodes = await t.client.listNodes();
    expect(nodes.every((n) => n.assignedTasks === 0)).toBe(true);
  });
});
