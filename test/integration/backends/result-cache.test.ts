// The result cache, in-process on the real Redis and the real broker: a second submission of
// identical tasks is answered without running them, counted in SchedulerCore.counters.cacheHits;
// a job that opts out runs every task again.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Agent } from "../../../agent/agent.js";
import { DistributeXClient } from "../../../client/index.js";
import { agentConfigSchema, loadConfig, schedulerConfigSchema } from "../../../common/config.js";
import { createLogger } from "../../../common/logger.js";
import { openBackends } from "../../../scheduler/backends/factory.js";
import { Scheduler } from "../../../scheduler/scheduler.js";
import { exampleKernels } from "../../../kernels/reference/index.js";
import { repo, testServices, uniquePrefix } from "../../helpers/services.js";

let scheduler: Scheduler;
let agent: Agent;
let client: DistributeXClient;

beforeAll(async () => {
  const { kafka, redis } = testServices();
  const prefix = uniquePrefix("rc");
  const config = loadConfig(schedulerConfigSchema, {
    section: "scheduler",
    env: {},
    flags: { port: 0, queue: "kafka", state: "redis", kafkaBrokers: kafka, kafkaTopicPrefix: prefix, redisUrl: redis, redisPrefix: prefix, drainGraceMs: 0 },
  });
  const log = createLogger("scheduler", "warn");
  scheduler = new Scheduler(config, log, await openBackends(config, log));
  const address = await scheduler.start();
  agent = new Agent(loadConfig(agentConfigSchema, { section: "agent", env: {}, flags: { scheduler: address, workers: 1, calibrate: false } }), createLogger("agent", "warn"));
  await agent.start();
  client = new DistributeXClient(address);
}, 60_000);

afterAll(async () => {
  client?.close();
  await agent?.stop(0);
  await scheduler?.stop(0);
});

describe("result cache (redis + kafka)", () => {
  it("serves a second identical submission from the cache and counts the hits", async () => {
    const saxpy = exampleKernels.saxpy!;
    const { kernelId } = await client.registerKernel(await readFile(path.join(repo, "build/kernels/saxpy.wasm")), { name: "saxpy" });
    const inputs = saxpy.makeTasks({ tasks: 20, size: 20 * 8, seed: Date.now() % 1000 });

    const first = await client.run({ kernelId, inputs });
    expect(first.job.state).toBe("JOB_STATE_SUCCEEDED");
    const placementsAfterFirst = scheduler.core.counters.placements;
    expect(scheduler.core.counters.cacheHits).toBe(0);

    const second = await client.run({ kernelId, inputs });
    expect(second.job.state).toBe("JOB_STATE_SUCCEEDED");
    expect(scheduler.core.counters.cacheHits).toBe(20);
    expect(scheduler.core.counters.placements).toBe(placementsAfterFirst); // nothing ran
    for (const r of second.results) {
      expect(r.nodeId).toBe("result-cache");
      expect(saxpy.check(inputs[r.taskIndex]!, r.output).ok).toBe(true);
      expect(Buffer.compare(Buffer.from(r.output), Buffer.from(first.results[r.taskIndex]!.output))).toBe(0);
    }

    const third = await client.run({ kernelId, inputs, skipResultCache: true });
    expect(third.job.state).toBe("JOB_STATE_SUCCEEDED");
    expect(scheduler.core.counters.cacheHits).toBe(20);
    expect(scheduler.core.counters.placements).toBe(placementsAfterFirst + 20);
  });
});
