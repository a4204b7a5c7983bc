// Kernel logs on the cross-machine backends (issue #16 item 6): a scheduler with --bus kafka
// --state redis and an agent as separate processes. The lines travel in the agent's signed
// task-event records and are stored with the result in Redis; the typed client and
// `distx result --logs` read them back as on the memory backends (test/e2e/kernel-logs.test.ts).
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeFramed } from "../../../scheduler/backends/codec.js";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";
import { expectLogResults, expectLogsFromCli, LOG_TEST_AGENT_ARGS, runLogJob } from "../../helpers/kernel-logs.js";
import { testServices, uniquePrefix } from "../../helpers/services.js";

let t: TestCluster;
let redis: Redis;
const prefix = uniquePrefix("klog");

beforeAll(async () => {
  const services = testServices();
  redis = new Redis(services.redis);
  t = await startTestCluster("kernel-logs-kafka", {
    agents: 1,
    agentArgs: () => LOG_TEST_AGENT_ARGS,
    schedulerArgs: [
      "--bus", "kafka", "--state", "redis",
      "--kafka-brokers", services.kafka, "--kafka-topic-prefix", prefix,
      "--redis-url", services.redis, "--redis-prefix", prefix,
      "--heartbeat-interval-ms", "200", "--agent-timeout-ms", "3000", "--drain-grace-ms", "0",
    ],
  });
}, 180_000);

afterAll(async () => {
  await t?.stop();
  await redis?.quit();
});

describe("kernel logs over Kafka + Redis", () => {
  it("travel in the task-event records, are stored with the result in Redis, and read back by client and CLI", async () => {
    const { jobId, state, results } = await runLogJob(t.client);
    expectLogResults(state, results);
    // Stored in Redis with the result, the failed task's too.
    const stored = await redis.hgetBuffer(`${prefix}:job:${jobId}:results`, "2");
    expect(stored).not.toBeNull();
    expect(decodeFramed<{ state: string; logs?: string[] }>(stored!).header).toMatchObject({ state: "TASK_STATE_FAILED", logs: ["about to trap"] });
    await expectLogsFromCli(jobId, t.address, t.cluster.clientEnv());
  }, 180_000);
});
