// Inputs by reference on Kafka + Redis (the real broker and the real Redis, real processes):
// 1 MiB and 16 MiB inputs are stored once in Redis, the submissions-log and assignment records
// carry only their references (each record a few KiB at most), the agent fetches each distinct
// input once over FetchBlob, and the blobs leave Redis when the job finishes.
import { randomFillSync } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { topicNames } from "../../../common/kafka-wire.js";
import { histogram } from "../../../kernels/reference/histogram.js";
import { exampleWasm } from "../../helpers/fixtures.js";
import { blobRig, type BlobRig } from "../../helpers/blob-rig.js";
import { until } from "../../helpers/services.js";

const MiB = 1024 * 1024;
let rig: BlobRig;

beforeAll(async () => {
  rig = await blobRig({ name: "inputs-by-ref-kafka", agents: 1, workersPerAgent: 2 });
}, 90_000);

afterAll(async () => {
  await rig?.stop();
});

function randomHistogramInput(bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  randomFillSync(b);
  b.writeUInt32LE((bytes - 8) / 4, 0);
  b.writeUInt32LE(24, 4);
  return b;
}

describe("inputs by reference on Kafka + Redis", () => {
  it("1 MiB and 16 MiB inputs: correct outputs, small records, one fetch per distinct input, blobs dropped when done", async () => {
    const { c, redis, prefix, recordSizes, agentMetric } = rig;
    const { kernelId } = await c.client.registerKernel(await exampleWasm("histogram"), { name: "histogram" });
    const small = randomHistogramInput(1 * MiB);
    const big = randomHistogramInput(16 * MiB);
    const inputs = [small, big, small, big];
    const { job } = await c.client.run({ kernelId, inputs, timeoutMs: 120_000 });
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    const results = await c.client.getResults(job.jobId);
    expect(results.map((r) => r.taskIndex)).toEqual([0, 1, 2, 3]);
    for (const r of results) expect(Buffer.from(r.output).equals(Buffer.from(histogram.reference(inputs[r.taskIndex]!)))).toBe(true);
    expect(await agentMetric("distx_agent_blob_fetches_total")).toBe(2);
    expect(await agentMetric("distx_agent_blob_fetched_bytes_total")).toBe(17 * MiB);

    // The job's 34 MiB of inputs never entered Kafka: the submission and every assignment record are small.
    const topics = topicNames(prefix);
    const submissions = await recordSizes(topics.submissions, 1);
    const assignments = await recordSizes(topics.assignments, 1);
    console.log(`record bytes: submissions ${submissions.join(", ")}; assignments ${assignments.join(", ")}`);
    for (const size of [...submissions, ...assignments]) expect(size).toBeLessThan(4096);

    // Stored once each in Redis while the job ran; gone with the job.
    await until("the job's blobs to leave Redis", async () => (await redis.keys(`${prefix}:blob:*`)).length === 0, 10_000, 100);
  }, 240_000);
});
