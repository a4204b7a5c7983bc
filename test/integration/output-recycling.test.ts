// Recycled output buffers on a real agent talking to a real scheduler (in-process, gRPC over
// loopback): an output's buffer is given back only once the session has written its update (or,
// by reference, once its upload is done), and every buffer given back is poisoned
// (DISTX_POISON_RELEASED_OUTPUTS=1): a result read after its buffer went back would carry poison
// to the client. Outputs of many sizes, inline and by reference, across jobs running at once.
import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { Agent } from "../../agent/agent.js";
import { DistributeXClient } from "../../client/index.js";
import { agentConfigSchema, loadConfig, schedulerConfigSchema } from "../../common/config.js";
import { createLogger } from "../../common/logger.js";
import { Scheduler } from "../../scheduler/scheduler.js";
import { fixtureKernel } from "../helpers/fixtures.js";

const KiB = 1024;
let scheduler: Scheduler | undefined;
let agent: Agent | undefined;
let client: DistributeXClient | undefined;
let address = "";
const poisonWas = process.env.DISTX_POISON_RELEASED_OUTPUTS;

afterAll(async () => {
  client?.close();
  await agent?.stop(0);
  await scheduler?.stop(0);
  if (poisonWas === undefined) delete process.env.DISTX_POISON_RELEASED_OUTPUTS;
  else process.env.DISTX_POISON_RELEASED_OUTPUTS = poisonWas;
});

/** The echo fixture's input (no spins, then the payload): its output is its input. */
const echoInput = (payload: Uint8Array): Uint8Array => {
  const b = new Uint8Array(4 + payload.byteLength);
  b.set(payload, 4);
  return b;
};

async function start(outputPoolMb: number): Promise<void> {
  await agent?.stop(0);
  client?.close();
  if (!scheduler) {
    // Outputs of 256 KiB and more go by reference (UploadOutput), smaller ones inline on the session.
    scheduler = new Scheduler(loadConfig(schedulerConfigSchema, { section: "scheduler", env: {}, flags: { port: 0, drainGraceMs: 0, outputByRefBytes: 256 * KiB } }), createLogger("scheduler", "warn"));
    address = await scheduler.start();
  }
  process.env.DISTX_POISON_RELEASED_OUTPUTS = "1";
  agent = new Agent(loadConfig(agentConfigSchema, { section: "agent", env: {}, flags: { scheduler: address, workers: 2, calibrate: false, adminPort: 0, outputPoolMb } }), createLogger("agent", "warn"));
  await agent.start();
  client = new DistributeXClient(address);
}

const metric = async (name: string): Promise<number> => {
  const text = await (await fetch(`http://${agent!.adminAddress}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return Number(line?.split(" ")[1]);
};

/** Three jobs at once, tasks of several output sizes (inline and by reference); every result byte-exact. */
async function runJobs(kernelId: string): Promise<void> {
  const sizes = [64 * KiB, 100 * KiB, 200 * KiB, 64 * KiB, 300 * KiB, 700 * KiB, 100 * KiB];
  const jobs = Array.from({ length: 3 }, (_, j) => Array.from({ length: 21 }, (_, i) => echoInput(randomBytes(sizes[(i + j) % sizes.length]!))));
  const runs = await Promise.all(jobs.map((inputs) => client!.run({ kernelId, inputs, skipResultCache: true })));
  runs.forEach(({ job, results }, j) => {
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    expect(results).toHaveLength(jobs[j]!.length);
    for (const r of results) expect(Buffer.from(r.output).equals(Buffer.from(jobs[j]![r.taskIndex]!))).toBe(true);
  });
}

describe("an agent recycling its output buffers", () => {
  it("returns every result byte-exact over many tasks while their buffers are recycled (and poisoned when given back)", async () => {
    await start(64);
    const { kernelId } = await client!.registerKernel(await fixtureKernel("echo"), { name: "echo" });
    await runJobs(kernelId);
    // Buffers really went round: given back after their update was written, and reused.
    expect(await metric("distx_agent_output_buffers_reused")).toBeGreaterThan(10);
    expect(await metric("distx_agent_output_pool_bytes")).toBeLessThanOrEqual(64 * 1024 * KiB);
  }, 120_000);

  it("keeps its bound, however many outputs come back at once", async () => {
    await start(1);
    const { kernelId } = await client!.registerKernel(await fixtureKernel("echo"), { name: "echo" });
    await runJobs(kernelId);
    expect(await metric("distx_agent_output_pool_bytes")).toBeLessThanOrEqual(1024 * KiB);
  }, 120_000);

  it("with outputPoolMb 0 keeps none and returns the same results", async () => {
    await start(0);
    const { kernelId } = await client!.registerKernel(await fixtureKernel("echo"), { name: "echo" });
    await runJobs(kernelId);
    expect(await metric("distx_agent_output_buffers_reused")).toBe(0);
    expect(await metric("distx_agent_output_pool_bytes")).toBe(0);
  }, 120_000);
});
