// Defect 7: a task result the broker refuses for good (over the task-events topic's
// max.message.bytes) must fail that task with a clear code, not be retried for ever while every
// later update of that agent waits behind it. Real broker, a topic with a small record limit.
import path from "node:path";
import { readFile } from "node:fs/promises";
import { Kafka, logLevel } from "kafkajs";
import { afterAll, describe, expect, it } from "vitest";
import { DistributeXClient } from "../../../client/index.js";
import { LocalCluster } from "../../../cli/local-cluster.js";
import { exampleKernels } from "../../../kernels/reference/index.js";
import { repo, testServices, uniquePrefix, until } from "../../helpers/private-redis.js";

const saxpy = exampleKernels.saxpy!;
let cluster: LocalCluster | undefined;
let client: DistributeXClient | undefined;
afterAll(async () => {
  client?.close();
  await cluster?.stop(3000);
});

describe("a produce the broker refuses", () => {
  it("fails that task with OUTPUT_TOO_LARGE and lets the agent's other results through", async () => {
    const { kafka } = testServices();
    const prefix = uniquePrefix("toolarge");
    const topic = `${prefix}.task-events`;
    const admin = new Kafka({ brokers: [kafka], clientId: "toolarge", logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await until("the task-events topic", async () => {
      if (!(await admin.listTopics()).includes(topic)) {
        await admin.createTopics({ topics: [{ topic, numPartitions: 8, configEntries: [{ name: "max.message.bytes", value: "16384" }] }], waitForLeaders: true });
      }
      return (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]!.partitions.every((p) => p.leader >= 0);
    }, 30_000, 200);
    await admin.disconnect();
    cluster = new LocalCluster({
      agents: 1,
      workersPerAgent: 1,
      logs: path.join(repo, "test-output", "logs", `produce-refused-${prefix}`),
      schedulerArgs: ["--bus", "kafka", "--kafka-brokers", kafka, "--kafka-topic-prefix", prefix, "--drain-grace-ms", "0", "--heartbeat-interval-ms", "200"],
      agentArgs: () => ["--no-calibrate"],
    });
    client = new DistributeXClient(await cluster.start());
    const { kernelId } = await client.registerKernel(await readFile(path.join(repo, "build/kernels/saxpy.wasm")), { name: "saxpy" });
    // 8,192 floats out: 32 KiB, twice the topic's record limit.
    const big = saxpy.makeTasks({ tasks: 1, size: 8192, seed: 1 });
    const small = saxpy.makeTasks({ tasks: 8, size: 8 * 16, seed: 2 });
    const a = await client.submitJob({ kernelId, inputs: big, skipResultCache: true, name: "big" });
    const b = await client.submitJob({ kernelId, inputs: small, skipResultCache: true, name: "small" });
    const jobA = await Promise.race([client.waitForJob(a.jobId), new Promise<never>((_, r) => setTimeout(() => r(new Error("the big job never ended")), 30_000))]);
    expect(jobA.state).toBe("JOB_STATE_FAILED");
    expect(jobA.firstError?.code).toBe("OUTPUT_TOO_LARGE");
    expect(jobA.firstError?.retryable).toBe(false);
    expect(jobA.firstError?.message).toMatch(/output is over the task-events topic's record limit/);
    const jobB = await Promise.race([client.waitForJob(b.jobId), new Promise<never>((_, r) => setTimeout(() => r(new Error("the small job never ended")), 30_000))]);
    expect(jobB.state).toBe("JOB_STATE_SUCCEEDED");
    for (const r of await client.getResults(b.jobId)) expect(saxpy.check(small[r.taskIndex]!, r.output).ok).toBe(true);
    expect((await client.listNodes()).map((n) => n.state)).toEqual(["NODE_STATE_READY"]);
  }, 120_000);

  it("counts that task as failed with OUTPUT_TOO_LARGE in the agent's metrics, not as succeeded", async () => {
    expect(cluster, "the cluster of the test before").toBeDefined();
    const admin = await cluster!.adminAddress("agent-0");
    const sum = (text: string, family: string, ...labels: string[]) =>
      text
        .split("\n")
        .filter((l) => l.startsWith(`${family}{`) && labels.every((x) => l.includes(x)))
        .reduce((s, l) => s + Number(l.split(" ").pop()), 0);
    let text = "";
    // A success counts once the broker acknowledged it: look until the small job's eight are in.
    await until("the agent's task counts", async () => {
      text = await (await fetch(`http://${admin}/metrics`)).text();
      return sum(text, "distx_agent_tasks_completed_total", 'outcome="succeeded"') >= 8 && sum(text, "distx_agent_task_failures_total") >= 1;
    }, 15_000, 200);
    expect(sum(text, "distx_agent_tasks_completed_total", 'outcome="succeeded"')).toBe(8);
    expect(sum(text, "distx_agent_tasks_completed_total", 'outcome="failed"')).toBe(1);
    expect(sum(text, "distx_agent_task_failures_total", 'code="OUTPUT_TOO_LARGE"')).toBe(1);
  }, 30_000);

  it("a turn's record over the limit is split: each task fails only for its own output", async () => {
    // The chaos harness lowered the limit below what one turn's results came to, though each
    // result fitted: every task in that record failed OUTPUT_TOO_LARGE. Same cluster, same 16 KiB
    // topic limit; 24 tasks of 6 KiB outputs each, tiny enough that the worker replies several at a time.
    expect(client, "the cluster of the first test").toBeDefined();
    const { kernelId } = await client!.registerKernel(await readFile(path.join(repo, "build/kernels/saxpy.wasm")), { name: "saxpy" });
    const inputs = saxpy.makeTasks({ tasks: 24, size: 24 * 1536, seed: 3 });
    const { jobId } = await client!.submitJob({ kernelId, inputs, skipResultCache: true, name: "many-6k" });
    const job = await Promise.race([client!.waitForJob(jobId), new Promise<never>((_, r) => setTimeout(() => r(new Error("the job never ended")), 60_000))]);
    expect(job.firstError?.message ?? "", "no task may fail").toBe("");
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    const results = await client!.getResults(jobId);
    expect(results.length).toBe(24);
    for (const r of results) expect(saxpy.check(inputs[r.taskIndex]!, r.output).ok).toBe(true);
  }, 90_000);
});
