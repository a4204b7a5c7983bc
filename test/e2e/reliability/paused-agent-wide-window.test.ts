// An agent paused (SIGSTOP) mid-job while it reads inputs by reference through its wide receive
// window (8 MiB HTTP/2 flow control, common/flow-window.ts), and while assignment batches with
// inline inputs just under 64 KiB travel on its session. The scheduler must not buffer towards the
// stopped agent without bound (FetchBlob holds at most two chunks per stream, a stalled reader is
// reset after outputStallMs), must mark it DOWN and run its tasks on the other agent, and once
// the agent is resumed (SIGCONT) while the jobs are still running, its late results must neither
// add a second result nor change one: every task ends once with its own input echoed back.
// Unlike agent-loss (kill -9) and paused-across-renewal (resumed after the job, Kafka bus), the
// paused agent here comes back into jobs still in flight, on the session bus.
import { afterAll, beforeAll, expect, it } from "vitest";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";
import { fixtureKernel } from "../../helpers/fixtures.js";
import { echoInput, MiB } from "../../helpers/outputs.js";
import { mib, procMemory, schedulerPid } from "../../helpers/rss.js";
import { sleep, until } from "../../helpers/services.js";

const AGENT_TIMEOUT_MS = 2000;
/**
 * Spins of the echo kernel per task: ~0.2 s per task here, so the 80 tasks are many seconds of
 * work for the one agent left, and the jobs are still running when the stopped one resumes.
 */
const SPINS = 200_000_000;
const BLOB_TASKS = 32;
const BLOB_BYTES = MiB;
const INLINE_TASKS = 48;
/** Just under inputByRefBytes (64 KiB): these travel inside the assignment batches. */
const INLINE_BYTES = 64 * 1024 - 1;
/**
 * What the scheduler may legitimately gain while the agent is stopped: the outputs the other agent
 * returns meanwhile (at most every output of both jobs, kept in the memory store: 32 MiB + 3 MiB),
 * what may be written towards the stopped agent before flow control stops it (its 8 MiB window,
 * plus two 1 MiB chunks per FetchBlob stream: a few streams), and 48 MiB for V8's heap to breathe
 * on a loaded machine. Buffering the blobs towards the stopped agent without bound (32 MiB of
 * inputs, again per retry) or its assignment batches would exceed it.
 */
const GROWTH_BOUND = BLOB_TASKS * BLOB_BYTES + INLINE_TASKS * INLINE_BYTES + 8 * MiB + 8 * MiB + 48 * MiB;

let t: TestCluster;
let victimPid = 0;

beforeAll(async () => {
  t = await startTestCluster("paused-agent-wide-window", {
    agents: 2,
    workersPerAgent: 1,
    schedulerArgs: ["--heartbeat-interval-ms", "200", "--agent-timeout-ms", String(AGENT_TIMEOUT_MS), "--drain-grace-ms", "1000"],
    agentArgs: (i) => ["--no-calibrate", "--gpu", "off", "--labels", `agent=${i}`],
  });
}, 120_000);

afterAll(async () => {
  if (victimPid) process.kill(victimPid, "SIGCONT");
  await t?.stop();
});

function echoInputs(tasks: number, bytes: number): Buffer[] {
  return Array.from({ length: tasks }, () => {
    const b = echoInput(bytes);
    b.writeUInt32LE(SPINS, 0);
    return b;
  });
}

/** Every task once, its output its own input; returns the nodes that ran them. */
async function expectExactlyOnce(jobId: string, inputs: Buffer[]): Promise<Map<number, string>> {
  const results = await t.client.getResults(jobId);
  expect(results.map((r) => r.taskIndex).sort((a, b) => a - b)).toEqual(inputs.map((_, i) => i));
  for (const r of results) expect(Buffer.compare(Buffer.from(r.output), inputs[r.taskIndex]!), `task ${r.taskIndex}`).toBe(0);
  return new Map(results.map((r) => [r.taskIndex, r.nodeId]));
}

it("a paused agent with a wide receive window: bounded scheduler memory, its tasks run elsewhere, its late results change nothing", async () => {
  const { kernelId } = await t.client.registerKernel(await fixtureKernel("echo"));
  const victim = t.cluster.processes.find((p) => p.name === "agent-0")!;
  victimPid = victim.child.pid!;
  const nodeOf = async (label: string) => (await t.client.listNodes(true)).find((n) => n.profile?.labels?.agent === label);
  const victimNode = (await until("agent-0 to be listed", () => nodeOf("0"), 30_000))!.nodeId;
  const otherNode = (await until("agent-1 to be listed", () => nodeOf("1"), 30_000))!.nodeId;

  const blobInputs = echoInputs(BLOB_TASKS, BLOB_BYTES);
  const inlineInputs = echoInputs(INLINE_TASKS, INLINE_BYTES);
  const blobJob = (await t.client.submitJob({ kernelId, inputs: blobInputs, skipResultCache: true, maxAttempts: 5 })).jobId;
  await until("agent-0 to run tasks of the blob job", async () => Number((await nodeOf("0"))?.completedTasks ?? 0) >= 2, 60_000, 20);
  // Placed before the rest of the blob job (higher priority), so that the stopped agent holds
  // tasks of both: inputs it fetches by reference, and inputs that came in its assignment batches.
  const inlineJob = (await t.client.submitJob({ kernelId, inputs: inlineInputs, skipResultCache: true, maxAttempts: 5, priority: 10 })).jobId;
  for await (const ev of t.client.watchJob(inlineJob)) if (ev.task?.nodeId === victimNode) break;
  const pid = schedulerPid(t.cluster);
  const before = procMemory(pid, "VmRSS");
  process.kill(victimPid, "SIGSTOP");
  const stoppedAt = Date.now();
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, procMemory(pid, "VmRSS"))), 50);
  try {
    await until("the stopped node to be DOWN", async () => (await nodeOf("0"))?.state === "NODE_STATE_DOWN", AGENT_TIMEOUT_MS * 10);
    // Held past the agent timeout, and long enough for the other agent to take over its tasks.
    await sleep(Math.max(0, 2 * AGENT_TIMEOUT_MS - (Date.now() - stoppedAt)) + 1000);
  } finally {
    clearInterval(sampler);
  }
  const jobsRunning = (await Promise.all([blobJob, inlineJob].map((j) => t.client.getJob(j)))).filter((j) => j.state === "JOB_STATE_RUNNING").length;
  process.kill(victimPid, "SIGCONT");
  victimPid = 0;
  console.log(`scheduler RSS ${mib(before)} before the stop, peak ${mib(peak)} while stopped (bound +${mib(GROWTH_BOUND)}); jobs running at SIGCONT: ${jobsRunning}`);
  // The point of resuming early: its late results meet jobs that are still running.
  expect(jobsRunning, "a job was still running when the agent resumed").toBeGreaterThan(0);
  expect(peak - before, `scheduler RSS grew by ${mib(peak - before)} while the agent was stopped`).toBeLessThanOrEqual(GROWTH_BOUND);

  for (const jobId of [blobJob, inlineJob]) expect((await t.client.waitForJob(jobId)).state).toBe("JOB_STATE_SUCCEEDED");
  const blobNodes = await expectExactlyOnce(blobJob, blobInputs);
  const inlineNodes = await expectExactlyOnce(inlineJob, inlineInputs);
  // The other agent ran what the stopped one held: the scheduler placed its tasks again.
  const ranOnOther = [...blobNodes.values(), ...inlineNodes.values()].filter((n) => n === otherNode).length;
  expect(ranOnOther).toBeGreaterThan(0);
  const retried = (await t.client.getJob(blobJob)).retries + (await t.client.getJob(inlineJob)).retries;
  expect(retried, "the stopped agent's tasks were placed again").toBeGreaterThan(0);

  // The resumed agent comes back as a READY node (its session replaced or registered again),
  // with no second entry for it, and its late results changed nothing.
  await until("the resumed node to be READY", async () => (await nodeOf("0"))?.state === "NODE_STATE_READY", 30_000);
  const nodes = await t.client.listNodes(true);
  expect(nodes.filter((n) => n.profile?.labels?.agent === "0").map((n) => n.nodeId)).toEqual([victimNode]);
  expect(nodes.filter((n) => n.state === "NODE_STATE_READY")).toHaveLength(2);
  await sleep(1000); // anything it still had to say has been said
  expect(await expectExactlyOnce(blobJob, blobInputs)).toEqual(blobNodes);
  expect(await expectExactlyOnce(inlineJob, inlineInputs)).toEqual(inlineNodes);

  // And it takes new work.
  const mine = echoInputs(4, BLOB_BYTES);
  const run = await t.client.submitJob({ kernelId, inputs: mine, skipResultCache: true, resources: { nodeSelector: { agent: "0" } } });
  expect((await t.client.waitForJob(run.jobId)).state).toBe("JOB_STATE_SUCCEEDED");
  expect(new Set((await expectExactlyOnce(run.jobId, mine)).values())).toEqual(new Set([victimNode]));
}, 180_000);
