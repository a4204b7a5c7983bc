// SIGTERM to the scheduler: it stops taking jobs, lets the running job finish, then exits cleanly.
import { afterAll, beforeAll, expect, it } from "vitest";
import { DistributeXError } from "../../client/index.js";
import { getExampleKernel } from "../../kernels/reference/index.js";
import { startTestCluster, type TestCluster } from "../helpers/cluster.js";
import { exampleWasm } from "../helpers/fixtures.js";

let t: TestCluster;

beforeAll(async () => {
  t = await startTestCluster("scheduler-drain", {
    schedulerArgs: ["--heartbeat-interval-ms", "200", "--agent-timeout-ms", "2000", "--drain-grace-ms", "30000"],
  });
});

afterAll(async () => {
  await t?.stop();
});

it("drains: refuses new jobs with UNAVAILABLE, finishes the running one, exits 0", async () => {
  const example = getExampleKernel("montecarlo_pi");
  const { kernelId } = await t.client.registerKernel(await exampleWasm("montecarlo_pi"));
  // 1.5·10⁸ samples a task (a few tenths of a second each, seconds for the job): the job must
  // still be running when the refused submission arrives, 200 ms after the SIGTERM. With 1.5·10⁷
  // a fast machine finished it first, and the scheduler had already drained and exited.
  const inputs = example.makeTasks({ tasks: 12, size: 12 * 150_000_000 });
  const { jobId } = await t.client.submitJob({ kernelId, inputs });
  const events: string[] = [];
  const watching = t.client.waitForJob(jobId, (ev) => ev.job && events.push(ev.job.state));
  while (((await t.client.getJob(jobId)).counts?.succeeded ?? 0) < 1) await new Promise((r) => setTimeout(r, 20));

  const scheduler = t.cluster.processes.find((p) => p.name === "scheduler")!;
  scheduler.child.kill("SIGTERM");
  await new Promise((r) => setTimeout(r, 200));
  const refused = await t.client.submitJob({ kernelId, inputs: inputs.slice(0, 1) }).catch((e: unknown) => e);
  expect(refused).toBeInstanceOf(DistributeXError);
  expect((refused as DistributeXError).codeName).toBe("UNAVAILABLE");
  expect((refused as DistributeXError).details).toMatch(/shutting down/);

  const job = await watching;
  expect(job.state).toBe("JOB_STATE_SUCCEEDED");
  expect(job.counts?.succeeded).toBe(12);
  expect(await scheduler.exited).toBe(0);
});
