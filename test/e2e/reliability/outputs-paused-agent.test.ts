// An agent paused (SIGSTOP) halfway through uploading a 32 MiB output (Redis state, a private
// redis-server). The scheduler must declare it lost after agentTimeoutMs (3 s), re-run its tasks on
// another agent and serve that attempt's output; the paused upload's bytes must leave Redis as
// soon as the node is declared lost (not at the upload's 10-minute expiry, nor at the agent's
// 120 s deadline); and once the agent is resumed (SIGCONT) its stale upload must be refused and
// must not add, overwrite or corrupt an output.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fixtureKernel } from "../../helpers/fixtures.js";
import { echoInput, MiB, readWithDefaultClient } from "../../helpers/outputs.js";
import { outageRig, type OutageRig } from "../../helpers/redis-outage.js";
import { sleep, until } from "../../helpers/services.js";

let rig: OutageRig | undefined;
let paused = 0;
afterAll(async () => {
  if (paused) process.kill(paused, "SIGCONT");
  await rig?.stop();
});

const SIZE = 32 * MiB + 11;

describe("an agent paused mid-upload", () => {
  it("is declared lost, its upload dropped at once; the task's other attempt is served; its stale upload is refused when it resumes", async () => {
    rig = await outageRig("outputs-paused-agent", { kafka: false });
    const { c, redis, prefix } = rig;
    const { kernelId } = await c.client.registerKernel(await fixtureKernel("echo"), { name: "echo" });
    // Task 0: a 32 MiB output at once. Task 1: a small one after a long spin, so the job is still
    // unfinished when the paused agent resumes (its stale upload meets an unfinished job).
    const big = echoInput(SIZE);
    const slow = echoInput(300 * 1024);
    slow.writeUInt32LE(1_500_000_000, 0);
    const inputs = [big, slow];
    const { jobId } = await c.client.submitJob({ kernelId, inputs, skipResultCache: true, timeoutMs: 120_000, maxAttempts: 3, resources: { memoryBytes: 128 * MiB } });

    // Catch the upload under way: stall Redis writes for a moment, stop the agent, let Redis go.
    const agentPid = c.cluster.processes.find((p) => p.name === "agent-0")!.child.pid!;
    const uploadKey = await until("task 0's upload to start", async () => (await redis.keys(`${prefix}:upload:*`))[0], 60_000, 2);
    await redis.client("PAUSE", 5000, "WRITE");
    process.kill(agentPid, "SIGSTOP");
    paused = agentPid;
    await redis.client("UNPAUSE");
    await sleep(300);
    const partial = await redis.strlen(uploadKey);
    console.log(`agent paused with ${partial} of ${SIZE} bytes of its upload in Redis`);
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(SIZE);

    const pausedNode = (await c.client.listNodes(true))[0]!.nodeId;
    c.cluster.startAgent(1, ["--no-calibrate", "--connect-timeout-ms", "0", "--workers", "2"]);
    const lostAt = await until("agent-0 declared lost", async () => ((await c.client.listNodes(true)).find((n) => n.nodeId === pausedNode)?.state === "NODE_STATE_DOWN" ? Date.now() : undefined), 15_000, 50);
    // The partial upload goes with the node (the agent, still paused, holds the call open).
    await until("the paused upload to leave Redis", async () => (await redis.exists(uploadKey)) === 0, 3000, 50);
    console.log(`partial upload dropped ${Date.now() - lostAt} ms after the node was declared lost`);

    const first = await until("task 0 to succeed on agent-1", async () => (await c.client.getResults(jobId)).find((x) => x.taskIndex === 0), 60_000, 100);
    expect(first.attempt).toBe(2);
    expect(Buffer.from(first.output).equals(big)).toBe(true);
    expect((await c.client.getJob(jobId)).state).toBe("JOB_STATE_RUNNING");

    // Resume the paused agent: its upload of attempt 1 is refused, and says so.
    process.kill(agentPid, "SIGCONT");
    paused = 0;
    const agentLog = path.join(c.cluster.logDir!, "agent-0.log");
    const refusal = await until("agent-0 to report its upload refused", async () =>
      readFileSync(agentLog, "utf8").split("\n").find((l) => l.includes('"event":"task_failed"') && l.includes('"task":0,')), 20_000, 100);
    console.log(`agent-0: ${(JSON.parse(refusal) as { err: string }).err}`);
    expect(refusal).toMatch(/declared lost/);
    expect(refusal).toMatch(/not retryable/);

    const job = await c.client.waitForJob(jobId);
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    const plain = await readWithDefaultClient(c, jobId);
    expect(plain.byRef).toBe(2);
    for (const [i, out] of plain.outputs) expect(out.equals(inputs[i]!), `task ${i}`).toBe(true);
    // Attempt 1 of task 0 never became an output; nothing of it is left.
    const kept = await redis.hkeys(`${prefix}:job:${jobId}:outs`);
    expect(kept).toContain("0.2");
    expect(kept).not.toContain("0.1");
    expect(await redis.strlen(`${prefix}:job:${jobId}:out:0.2`)).toBe(SIZE);
    expect(await redis.keys(`${prefix}:upload:*`)).toEqual([]);
  }, 120_000);
});
