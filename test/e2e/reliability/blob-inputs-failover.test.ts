// Inputs by reference and shared inputs survive a failover: Kafka + Redis, an active scheduler
// and a standby, a gemm job whose A blocks go by reference and whose B is a shared input,
// submitted while no agent is up; the active scheduler is killed (-9) before any task runs. The
// standby restores the job (its references from Redis), an agent then joins, fetches the blobs
// from the new scheduler (B once) and every output is right; the blobs leave Redis afterwards.
import path from "node:path";
import { readFile } from "node:fs/promises";
import { afterAll, describe, expect, it } from "vitest";
import { gemm } from "../../../kernels/reference/gemm.js";
import { failoverRig, metricOf, type FailoverRig } from "../../helpers/blob-rig.js";
import { repo, until } from "../../helpers/services.js";

let rig: FailoverRig | undefined;
afterAll(async () => {
  await rig?.stop();
});

describe("blobs across a failover", () => {
  it("a job with inputs by reference and a shared input, its scheduler killed before it ran, completes on the standby", async () => {
    rig = await failoverRig("blob-failover");
    const { cluster, schedulers, client, redis, prefix } = rig;
    const { kernelId } = await client.registerKernel(await readFile(path.join(repo, "build/kernels/gemm.wasm")), { name: "gemm" });
    // 256²: each A block (64 rows) is 64 KiB + its header, at the by-reference threshold; B is 256 KiB.
    const { inputs, shared } = gemm.shared!.makeTasks({ tasks: 4, size: 256, seed: 9 });
    const { jobId } = await client.submitJob({ kernelId, inputs, sharedInputs: shared });
    expect((await redis.keys(`${prefix}:blob:*`)).filter((k) => !k.endsWith(":jobs")).length).toBe(5);
    schedulers[0]!.child.kill("SIGKILL");

    cluster.startAgent(0, ["--workers", "2", "--no-calibrate", "--connect-timeout-ms", "0"]);
    const job = await rig.finalJob(jobId, 90_000);
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    const results = await client.getResults(jobId);
    expect(results.length).toBe(4);
    for (const r of results) expect(gemm.check(gemm.shared!.inline(inputs[r.taskIndex]!, [shared[0]!.data]), r.output).ok, `task ${r.taskIndex}`).toBe(true);
    // B once, and each A block once.
    expect(await metricOf(cluster, "agent-0", "distx_agent_blob_fetches_total")).toBe(5);
    await until("the job's blobs to leave Redis", async () => (await redis.keys(`${prefix}:blob:*`)).length === 0, 10_000, 100);
  }, 180_000);
});
