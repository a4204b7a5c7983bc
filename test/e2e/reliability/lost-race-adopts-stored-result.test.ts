// A task's result is recorded first-wins (HSETNX). When another scheduler's record came first (a
// deposed leader's, written before it learnt it had lost the lease), the active scheduler's own
// record loses; it must then take the stored outcome as the task's, so that the job's state, its
// counts, its watchers and GetResults all tell the same story. Before, the job ended SUCCEEDED
// while GetResults answered the other record (found by the chaos harness, 36-minute run, seed 1).
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DistributeXClient, type JobEvent } from "../../../client/index.js";
import { LocalCluster } from "../../../cli/local-cluster.js";
import { repoRoot } from "../../../common/paths.js";
import { RedisStateStore } from "../../../scheduler/backends/redis-state.js";
import { fixtureKernel } from "../../helpers/fixtures.js";
import { testServices, uniquePrefix } from "../../helpers/private-redis.js";

const TERMINAL_TASK = new Set(["TASK_STATE_SUCCEEDED", "TASK_STATE_FAILED", "TASK_STATE_CANCELLED"]);

let cluster: LocalCluster;
let client: DistributeXClient;
let deposed: RedisStateStore;
const prefix = uniquePrefix("adopt");

beforeAll(async () => {
  const { redis } = testServices();
  cluster = new LocalCluster({
    agents: 1,
    workersPerAgent: 2,
    logs: path.join(repoRoot(), "test-output", "logs", `adopt-${prefix}`),
    schedulerArgs: ["--state", "redis", "--redis-url", redis, "--redis-prefix", prefix, "--drain-grace-ms", "0"],
    agentArgs: () => ["--no-calibrate"],
  });
  client = new DistributeXClient(await cluster.start());
  // The other writer: the product's own store on the same keys, as a deposed leader holds it.
  deposed = await RedisStateStore.connect({ url: redis, prefix });
}, 90_000);

afterAll(async () => {
  client?.close();
  await deposed?.close();
  await cluster?.stop(3000);
});

/** The echo fixture's input: u32 spin iterations, then the payload it echoes. */
function echoInput(spins: number, payload: string): Buffer {
  const b = Buffer.alloc(4 + payload.length);
  b.writeUInt32LE(spins, 0);
  b.write(payload, 4);
  return b;
}

describe("a scheduler whose result record loses the first-wins race", () => {
  it("takes the stored outcome: job state, counts, watch and GetResults agree", async () => {
    const { kernelId } = await client.registerKernel(await fixtureKernel("echo"), { name: "echo" });
    // Task 0 spins long enough (~seconds) for the other record to be written while it runs.
    const inputs = [echoInput(4_000_000_000, "slow"), echoInput(0, "fast")];
    const { jobId } = await client.submitJob({ kernelId, inputs, skipResultCache: true });

    const events: JobEvent[] = [];
    const watched = client.waitForJob(jobId, (ev) => events.push(ev));
    await deposed.recordResult(jobId, { taskIndex: 0, state: "TASK_STATE_CANCELLED", output: Buffer.alloc(0), error: { code: "CANCELLED", message: "job cancelled" }, nodeId: "node-deposed", attempt: 1, runMs: 0 });

    const job = await watched;
    expect(job.state).toBe("JOB_STATE_CANCELLED");
    expect(job.counts).toMatchObject({ succeeded: 1, cancelled: 1, failed: 0 });

    const results = await client.getResults(jobId);
    expect(results.map((r) => [r.taskIndex, r.state])).toEqual([
      [0, "TASK_STATE_CANCELLED"],
      [1, "TASK_STATE_SUCCEEDED"],
    ]);
    expect(results[1]!.output.subarray(4).toString()).toBe("fast");

    // The watcher saw each task's outcome once, and it is the stored one.
    const outcomes = events.filter((ev) => ev.task && TERMINAL_TASK.has(ev.task.state)).map((ev) => [ev.task!.taskIndex, ev.task!.state]);
    expect(outcomes.sort()).toEqual([
      [0, "TASK_STATE_CANCELLED"],
      [1, "TASK_STATE_SUCCEEDED"],
    ]);
    expect((await client.getJob(jobId)).state).toBe("JOB_STATE_CANCELLED");
  }, 120_000);
});
