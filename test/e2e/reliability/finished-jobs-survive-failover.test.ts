// Jobs that finished under one scheduler must still be answered by the next: the chaos harness
// found GetJob/GetResults answering NOT_FOUND for every job finished before a failover, while
// all their results were still in Redis (restore() loaded only unfinished jobs). Real processes:
// scheduler A (Redis state) runs a job to the end and cancels another, is killed; scheduler B
// starts on the same Redis prefix and must answer GetJob, ListJobs, GetResults and WatchJob for
// both as A did.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DistributeXClient, type JobEvent } from "../../../client/index.js";
import { LocalCluster, waitForListening } from "../../../cli/local-cluster.js";
import { exampleKernels } from "../../../kernels/reference/index.js";
import { freePort, repo, testServices, uniquePrefix, until } from "../../helpers/private-redis.js";

const saxpy = exampleKernels.saxpy!;
let cluster: LocalCluster | undefined;
afterAll(async () => {
  await cluster?.stop(3000);
});

describe("finished jobs after a failover", () => {
  it("a scheduler taking over answers for jobs that finished under its predecessor", async () => {
    const { redis } = testServices();
    const prefix = uniquePrefix("finished");
    const port = await freePort();
    cluster = new LocalCluster({ agents: 0, logs: path.join(repo, "test-output", "logs", `finished-${prefix}`) });
    const args = ["scheduler", "--port", String(port), "--state", "redis", "--redis-url", redis, "--redis-prefix", prefix, "--agent-timeout-ms", "3000", "--drain-grace-ms", "0"];
    const a = cluster.spawnProcess("scheduler-a", args);
    await waitForListening(a, 30_000);
    const address = `127.0.0.1:${port}`;
    cluster.address = address;
    cluster.startAgent(0, ["--workers", "1", "--no-calibrate", "--connect-timeout-ms", "0"]);
    const client = new DistributeXClient(address, { retry: { deadlineMs: 60_000 } });
    await until("agent ready", async () => (await client.listNodes()).some((n) => n.state === "NODE_STATE_READY"), 60_000);

    const { kernelId } = await client.registerKernel(await readFile(path.join(repo, "build/kernels/saxpy.wasm")), { name: "saxpy" });
    const inputs = saxpy.makeTasks({ tasks: 40, size: 40 * 16, seed: 9 });
    const { job: done } = await client.run({ kernelId, inputs, name: "done-before" });
    expect(done.state).toBe("JOB_STATE_SUCCEEDED");
    // A second job cancelled before any task could run: no agent matches its node selector.
    const cancelled = await client.submitJob({ kernelId, inputs: inputs.slice(0, 5), name: "cancelled-before", skipResultCache: true, resources: { nodeSelector: { pool: "nowhere" } } });
    await client.cancelJob(cancelled.jobId);
    const beforeA = await client.getJob(done.jobId);
    const cancelledOnA = await client.getJob(cancelled.jobId);
    expect(cancelledOnA.state).toBe("JOB_STATE_CANCELLED");

    a.child.kill("SIGKILL");
    await new Promise((r) => a.child.once("exit", r));
    const b = cluster.spawnProcess("scheduler-b", args);
    await waitForListening(b, 30_000);

    const onB = await client.getJob(done.jobId);
    expect(onB.state).toBe("JOB_STATE_SUCCEEDED");
    expect(onB.counts).toEqual(beforeA.counts);
    expect(onB.taskCount).toBe(40);
    const results = await client.getResults(done.jobId);
    expect(results.map((r) => r.taskIndex)).toEqual([...Array(40).keys()]);
    for (const r of results) expect(saxpy.check(inputs[r.taskIndex]!, r.output).ok, `task ${r.taskIndex}`).toBe(true);
    expect((await client.listJobs(10)).map((j) => j.jobId)).toEqual(expect.arrayContaining([done.jobId, cancelled.jobId]));

    const cancelledOnB = await client.getJob(cancelled.jobId);
    expect(cancelledOnB.state).toBe("JOB_STATE_CANCELLED");
    expect(cancelledOnB.counts).toEqual(cancelledOnA.counts);

    // A watch of a finished job gets its final snapshot at once.
    const events: JobEvent[] = [];
    for await (const ev of client.watchJob(done.jobId) as AsyncGenerator<JobEvent>) events.push(ev);
    expect(events.at(-1)?.job?.state).toBe("JOB_STATE_SUCCEEDED");
    client.close();
  }, 120_000);
});
