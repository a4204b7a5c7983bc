// At-least-once execution with results recorded once: kill -9 an agent mid-job.
import { afterAll, beforeAll, expect, it } from "vitest";
import { getExampleKernel } from "../../kernels/reference/index.js";
import { startTestCluster, type TestCluster } from "../helpers/cluster.js";
import { exampleWasm } from "../helpers/fixtures.js";

let t: TestCluster;

beforeAll(async () => {
  t = await startTestCluster("agent-loss");
});

afterAll(async () => {
  await t?.stop();
});

it("a job completes with every result correct and none duplicated when an agent is killed mid-job", async () => {
  const example = getExampleKernel("montecarlo_pi");
  const { kernelId } = await t.client.registerKernel(await exampleWasm("montecarlo_pi"));
  // 40 tasks of ~40 ms each on two one-worker agents: about a second of work per agent.
  const inputs = example.makeTasks({ tasks: 40, size: 40 * 2_000_000 });
  const { jobId } = await t.client.submitJob({ kernelId, inputs, name: "agent-loss" });

  const victim = t.cluster.processes.find((p) => p.name === "agent-0")!;
  let killedAt = -1;
  const events: { index: number; state: string; node: string; attempt: number }[] = [];
  const job = await t.client.waitForJob(jobId, (ev) => {
    if (!ev.task) return;
    events.push({ index: ev.task.taskIndex, state: ev.task.state, node: ev.task.nodeId, attempt: ev.task.attempt });
    const done = events.filter((e) => e.state === "TASK_STATE_SUCCEEDED").length;
    if (killedAt < 0 && done >= 8) {
      killedAt = done;
      victim.child.kill("SIGKILL");
    }
  });
  expect(killedAt).toBeGreaterThan(0);
  expect(await victim.exited).not.toBe(0);

  expect(job.state).toBe("JOB_STATE_SUCCEEDED");
  expect(job.counts?.succeeded).toBe(40);
  expect(job.retries).toBeGreaterThan(0); // the killed agent held tasks that had to be re-placed

  const results = await t.client.getResults(jobId);
  expect(results).toHaveLength(40);
  expect(new Set(results.map((r) => r.taskIndex)).size).toBe(40);
  for (const r of results) {
    const check = example.check(inputs[r.taskIndex]!, r.output);
    expect(check.ok, check.detail).toBe(true);
  }
  // Retried tasks finished on the surviving agent, in a later attempt.
  const survivors = new Set(results.filter((r) => r.attempt > 1).map((r) => r.nodeId));
  expect(survivors.size).toBe(1);

  const nodes = await t.client.listNodes(true);
  expect(nodes.filter((n) => n.state === "NODE_STATE_DOWN")).toHaveLength(1);
  expect(nodes.filter((n) => n.state === "NODE_STATE_READY")).toHaveLength(1);
});
