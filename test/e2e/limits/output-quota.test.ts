// Outputs by reference count against the tenant's outputBytes quota (real processes, real gRPC):
// with a 3 MiB quota, of three tasks with 2 MiB outputs running two at a time, exactly one output
// is kept; the other uploads are refused as they start (uploads in flight count too, so two at
// once cannot overshoot the quota together) and those tasks fail OUTPUT_TOO_LARGE, not retried.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixtureKernel } from "../../helpers/fixtures.js";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";
import { echoInput, MiB } from "../../helpers/outputs.js";

let c: TestCluster;

beforeAll(async () => {
  c = await startTestCluster("output-quota", {
    agents: 1,
    workersPerAgent: 2,
    schedulerArgs: ["--heartbeat-interval-ms", "200", "--agent-timeout-ms", "2000", "--drain-grace-ms", "2000", "--quota-output-bytes", String(3 * MiB)],
  });
}, 60_000);

afterAll(async () => {
  await c?.stop();
});

describe("the outputBytes quota", () => {
  it("keeps outputs up to the quota; the uploads past it fail their tasks OUTPUT_TOO_LARGE", async () => {
    const { kernelId } = await c.client.registerKernel(await fixtureKernel("echo"), { name: "echo" });
    const inputs = [0, 1, 2].map(() => echoInput(2 * MiB));
    const { job } = await c.client.run({ kernelId, inputs, skipResultCache: true, maxAttempts: 3, resources: { memoryBytes: 32 * MiB } });
    expect(job.state).toBe("JOB_STATE_FAILED");
    expect(job.counts?.succeeded).toBe(1);
    expect(job.counts?.failed).toBe(2);
    expect(job.retries).toBe(0);
    expect(job.firstError?.code).toBe("OUTPUT_TOO_LARGE");
    expect(job.firstError?.message).toMatch(/quota outputBytes exceeded: limit 3145728/);
    const results = await c.client.getResults(job.jobId);
    const ok = results.filter((r) => r.state === "TASK_STATE_SUCCEEDED");
    expect(ok).toHaveLength(1);
    expect(Buffer.from(ok[0]!.output).equals(inputs[ok[0]!.taskIndex]!)).toBe(true);
  }, 60_000);
});
