// Defect 9: a transient FetchKernel failure (here: the scheduler's Redis refuses the read of the
// kernel for a moment) must not fail the task for good as INVALID_KERNEL. It is classified as
// KERNEL_FETCH_FAILED (retryable), retried, and the job succeeds; an unknown kernel stays permanent.
import path from "node:path";
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DistributeXClient } from "../../../client/index.js";
import { LocalCluster } from "../../../cli/local-cluster.js";
import { codeOf, isRetryable, taskErrorProto } from "../../../common/task-errors.js";
import { exampleKernels } from "../../../kernels/reference/index.js";
import { privateRedis, repo, sleep, until, type PrivateRedis } from "../../helpers/private-redis.js";

const saxpy = exampleKernels.saxpy!;
let redis: PrivateRedis;
let cluster: LocalCluster;
let client: DistributeXClient;

beforeAll(async () => {
  redis = await privateRedis();
  cluster = new LocalCluster({
    agents: 0,
    workersPerAgent: 1,
    logs: path.join(repo, "test-output", "logs", `fetch-transient-${Date.now()}`),
    schedulerArgs: ["--state", "redis", "--redis-url", redis.url, "--redis-prefix", "fk", "--heartbeat-interval-ms", "200", "--agent-timeout-ms", "2000", "--drain-grace-ms", "0"],
  });
  const address = await cluster.start();
  client = new DistributeXClient(address);
}, 60_000);

afterAll(async () => {
  client?.close();
  await cluster?.stop(3000);
  redis?.stop();
});

describe("task-error taxonomy", () => {
  it("one isRetryable: transient codes retry, permanent ones do not; the wire form agrees", () => {
    for (const c of ["KERNEL_FETCH_FAILED", "WORKER_CRASHED", "AGENT_LOST", "INTERNAL"]) expect(isRetryable(c), c).toBe(true);
    for (const c of ["TRAP", "TIMEOUT", "MEMORY_LIMIT", "INVALID_KERNEL", "CANCELLED", "OUTPUT_TOO_LARGE", "UNSCHEDULABLE"]) expect(isRetryable(c), c).toBe(false);
    expect(taskErrorProto({ code: "TRAP", message: "m" })).toEqual({ code: "TRAP", message: "m", kind: "TASK_ERROR_CODE_TRAP", retryable: false });
    expect(codeOf({ code: "", kind: "TASK_ERROR_CODE_KERNEL_FETCH_FAILED" })).toBe("KERNEL_FETCH_FAILED");
    expect(codeOf({ code: "bogus" })).toBe("INTERNAL");
  });

  it("a transient FetchKernel failure is retried and the job succeeds (not INVALID_KERNEL)", async () => {
    const wasm = await readFile(path.join(repo, "build/kernels/saxpy.wasm"));
    const { kernelId } = await client.registerKernel(wasm, { name: "saxpy" });
    const inputs = saxpy.makeTasks({ tasks: 4, size: 64, seed: 9 });
    // No agent yet: the job waits, and the scheduler has the kernel's kind cached from the submit.
    const { jobId } = await client.submitJob({ kernelId, inputs, skipResultCache: true });
    // The store refuses to read kernels (HMGET) for 1.5 s: every FetchKernel fails meanwhile.
    expect(redis.cli("ACL", "SETUSER", "default", "-hmget")).toContain("OK");
    cluster.startAgent(0, ["--no-calibrate"]);
    await until("the agent to try the fetch", async () => (await client.listNodes()).length > 0, 30_000, 50);
    await sleep(1500);
    expect(redis.cli("ACL", "SETUSER", "default", "+hmget")).toContain("OK");
    const job = await client.waitForJob(jobId);
    expect(job.firstError?.code ?? "", job.firstError?.message).toBe("");
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    const results = await client.getResults(jobId);
    for (const r of results) expect(saxpy.check(inputs[r.taskIndex]!, r.output).ok).toBe(true);
  }, 60_000);
});
