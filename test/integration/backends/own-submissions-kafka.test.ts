// The active scheduler reads back the submissions it appended (scheduler/backends/own-submissions.ts):
// one it wrote itself, for a job it still holds, is passed over undecoded; one it wrote for a job
// it no longer holds (recorded nowhere: its putJob failed) is decoded and adopted; and a standby
// that wrote nothing rebuilds from every record of the log.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SubmissionRecord } from "../../../scheduler/backends/bus.js";
import { KafkaBus } from "../../../scheduler/backends/kafka-bus.js";
import { testServices, uniquePrefix, until } from "../../helpers/services.js";

const submission = (jobId: string, input: string): SubmissionRecord => ({
  jobId,
  submittedAtMs: 1,
  kernelId: "a".repeat(64),
  priority: 0,
  timeoutMs: 0,
  maxAttempts: 0,
  name: "n",
  skipCache: false,
  needs: { cores: 1, memoryBytes: 0, gpu: false, nodeSelector: {}, gpuFallback: "GPU_FALLBACK_WAIT" },
  inputs: [Buffer.from(input)],
});

let brokers: string[];
const topicPrefix = uniquePrefix("own");
const buses: KafkaBus[] = [];
const open = async (groupId: string) => {
  const bus = await KafkaBus.connect({ brokers, topicPrefix, partitions: 1, assignmentPartitions: 1, connectTimeoutMs: 5000, groupId });
  buses.push(bus);
  return bus;
};
beforeAll(() => {
  brokers = [testServices().kafka];
});
afterAll(async () => {
  for (const b of buses) await b.close();
});

describe("submissions read back", () => {
  it("skips only its own records of jobs it holds; a standby decodes them all", async () => {
    const ids = ["held-1", "dropped", "held-2", "last"].map((t) => `job-${t}-${randomUUID()}`);
    const held = new Set([ids[0]!, ids[2]!]);
    const active = await open(`${topicPrefix}-active`);
    const seen: string[] = [];
    await active.consume({
      submission: async (rec) => void seen.push(rec.jobId),
      holds: (jobId) => held.has(jobId),
      event: async () => undefined,
      load: () => undefined,
    });
    for (const [i, id] of ids.entries()) await active.appendSubmission(submission(id, `in${i}`));
    // One partition: once the last record is handled, every earlier one has been.
    await until("the last submission", async () => seen.includes(ids[3]!), 30_000, 20);
    expect(seen).toEqual([ids[1], ids[3]]);

    const standby = await open(`${topicPrefix}-standby`);
    const rebuilt: SubmissionRecord[] = [];
    await standby.consume({ submission: async (rec) => void rebuilt.push(rec), holds: () => true, event: async () => undefined, load: () => undefined });
    await until("every submission on the standby", async () => rebuilt.length >= ids.length, 30_000, 20);
    expect(rebuilt.map((r) => r.jobId)).toEqual(ids);
    expect(rebuilt.map((r) => r.inputs[0]!.toString())).toEqual(["in0", "in1", "in2", "in3"]);
  }, 90_000);
});
