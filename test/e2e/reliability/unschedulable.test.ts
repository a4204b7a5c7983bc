// Defect 8: a job no node could ever take was accepted and stayed PENDING for ever with no reason.
// Now GetJob / ListJobs / `distx jobs` say why (Nomad style, from the placement checks' verdict
// per node), an alert fires, and unschedulable=FAIL refuses such a job at submit.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DistributeXError, type Alert } from "../../../client/index.js";
import { cliEntry } from "../../../cli/local-cluster.js";
import { exampleWasm } from "../../helpers/fixtures.js";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";
import { until } from "../../helpers/private-redis.js";

let t: TestCluster;
let kernelId: string;
beforeAll(async () => {
  t = await startTestCluster("unschedulable");
  kernelId = (await t.client.registerKernel(await exampleWasm("saxpy"))).kernelId;
}, 60_000);
afterAll(async () => {
  await t?.stop();
});

describe("unschedulable jobs", () => {
  it("stay PENDING with the reason in GetJob, ListJobs, distx jobs and an alert; resolved on cancel", async () => {
    const alerts: Alert[] = [];
    const abort = new AbortController();
    const watching = (async () => {
      for await (const a of t.client.watchAlerts({ includeActive: true, signal: abort.signal })) alerts.push(a);
    })().catch(() => undefined);
    const { jobId } = await t.client.submitJob({ kernelId, inputs: [new Uint8Array(16)], resources: { cores: 4096 }, name: "huge" });
    const job = await t.client.getJob(jobId);
    expect(job.state).toBe("JOB_STATE_PENDING");
    expect(job.unschedulableReason).toBe("0/2 nodes: 2 have fewer than 4096 cores");
    expect((await t.client.listJobs()).find((j) => j.jobId === jobId)?.unschedulableReason).toBe(job.unschedulableReason);
    const sel = await t.client.submitJob({ kernelId, inputs: [new Uint8Array(16)], resources: { nodeSelector: { zone: "mars" } } });
    expect((await t.client.getJob(sel.jobId)).unschedulableReason).toBe("0/2 nodes: 2 do not match node selector zone=mars");
    const { stdout } = await promisify(execFile)(process.execPath, [cliEntry(), "jobs", "-s", t.address], { env: t.cluster.clientEnv() });
    expect(stdout).toContain(`${jobId} cannot be placed: 0/2 nodes: 2 have fewer than 4096 cores`);
    await until("the JobUnschedulable alert", async () => alerts.find((a) => a.name === "JobUnschedulable" && a.labels["distx_job"] === jobId && a.state === "firing"), 10_000, 50);
    await t.client.cancelJob(jobId);
    await t.client.cancelJob(sel.jobId);
    await until("the alert resolved", async () => alerts.find((a) => a.name === "JobUnschedulable" && a.labels["distx_job"] === jobId && a.state === "resolved"), 10_000, 50);
    abort.abort();
    await watching;
  }, 60_000);

  it("unschedulable=fail refuses the job at submit with the reason; a job that fits has no reason", async () => {
    const err = await t.client.submitJob({ kernelId, inputs: [new Uint8Array(16)], resources: { cores: 4096 }, unschedulable: "fail" }).then(() => undefined, (e: unknown) => e);
    expect((err as DistributeXError).codeName).toBe("FAILED_PRECONDITION");
    expect((err as DistributeXError).details).toMatch(/0\/2 nodes: 2 have fewer than 4096 cores/);
    const ok = await t.client.submitJob({ kernelId, inputs: [new Uint8Array(16)], unschedulable: "fail" });
    const job = await t.client.waitForJob(ok.jobId);
    expect(job.unschedulableReason).toBe("");
  }, 60_000);
});
