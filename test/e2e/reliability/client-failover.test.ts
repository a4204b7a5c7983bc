// Defect 5: the typed client and `distx submit` must ride out a scheduler dying mid-job. Kafka +
// Redis, an active scheduler and a standby; kill -9 the active one while a job runs. `distx submit`
// (a real CLI process given both addresses) must finish with the job's outcome, and typed-client
// watches (final-only and full) and a runJob (RunJob, resumed as a watch) must see every task's
// outcome exactly once.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DistributeXClient, type JobEvent } from "../../../client/index.js";
import { cliEntry } from "../../../cli/local-cluster.js";
import { exampleKernels } from "../../../kernels/reference/index.js";
import { failoverRig, type FailoverRig } from "../../helpers/blob-rig.js";
import { repo, until } from "../../helpers/private-redis.js";

const saxpy = exampleKernels.saxpy!;
let rig: FailoverRig | undefined;
afterAll(async () => {
  await rig?.stop();
});

async function collect(client: DistributeXClient, jobId: string, finalOnly: boolean): Promise<Map<number, number>> {
  const outcomes = new Map<number, number>();
  for await (const ev of client.watchJob(jobId, { finalOnly }) as AsyncGenerator<JobEvent>) {
    const t = ev.task;
    if (t && ["TASK_STATE_SUCCEEDED", "TASK_STATE_FAILED", "TASK_STATE_CANCELLED"].includes(t.state)) outcomes.set(t.taskIndex, (outcomes.get(t.taskIndex) ?? 0) + 1);
  }
  return outcomes;
}

describe("client failover", () => {
  it("kill -9 of the active scheduler mid-job: distx submit and watches complete, every outcome exactly once", async () => {
    const { cluster, schedulers, client } = (rig = await failoverRig("failover"));
    const addresses = cluster.address;
    for (let i = 0; i < 2; i++) cluster.startAgent(i, ["--workers", "1", "--no-calibrate", "--connect-timeout-ms", "0"]);
    await until("2 agents ready", async () => (await client.listNodes()).filter((n) => n.state === "NODE_STATE_READY").length >= 2, 60_000);

    const wasm = path.join(repo, "build/kernels/saxpy.wasm");
    const { kernelId } = await client.registerKernel(await readFile(wasm), { name: "saxpy" });
    const inputs = saxpy.makeTasks({ tasks: 600, size: 600 * 16, seed: 5 });
    const dir = mkdtempSync(path.join(os.tmpdir(), "distx-failover-"));
    inputs.forEach((b, i) => writeFileSync(path.join(dir, `${String(i).padStart(4, "0")}.bin`), b));

    // `distx submit` as a user runs it, given the active scheduler and its standby.
    const cli = spawn(process.execPath, [cliEntry(), "submit", "-s", addresses, "--kernel", kernelId, "--input-dir", dir, "--no-progress", "--name", "failover"], { stdio: ["ignore", "pipe", "pipe"], env: cluster.clientEnv() });
    let out = "";
    cli.stdout.on("data", (d: Buffer) => (out += d.toString()));
    cli.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const cliDone = new Promise<number | null>((r) => cli.on("exit", r));

    const jobId = await until("the CLI's job", async () => (await client.listJobs(10)).find((j) => j.name === "failover")?.jobId, 30_000, 50);
    // A typed-client runJob (RunJob: submit and watch on one call) of an inline job beside it.
    const runInputs = saxpy.makeTasks({ tasks: 600, size: 512, seed: 6 });
    const runOutcomes = new Map<number, number>();
    const runClient = new DistributeXClient(addresses, { retry: { deadlineMs: 60_000 } });
    const ran = runClient.runJob({ kernelId, inputs: runInputs, name: "failover-runjob" }, (ev) => {
      const t = ev.task;
      if (t && ["TASK_STATE_SUCCEEDED", "TASK_STATE_FAILED", "TASK_STATE_CANCELLED"].includes(t.state)) runOutcomes.set(t.taskIndex, (runOutcomes.get(t.taskIndex) ?? 0) + 1);
    });
    const finalOnly = collect(client, jobId, true);
    const full = collect(new DistributeXClient(addresses, { retry: { deadlineMs: 60_000 } }), jobId, false);
    await until("50 tasks done", async () => (await client.getJob(jobId)).counts!.succeeded >= 50, 60_000, 50);
    const runJobAtKill = await until("the runJob's job", async () => (await client.listJobs(10)).find((j) => j.name === "failover-runjob"), 30_000, 50);
    expect(runJobAtKill?.state, "the runJob's job is still running when the scheduler dies").toMatch(/PENDING|RUNNING/);
    schedulers[0]!.child.kill("SIGKILL");

    expect(await cliDone, out).toBe(0);
    expect(out).toMatch(/job \S+ succeeded: 600\/600 tasks succeeded/i);
    for (const [name, watch] of [["final-only", finalOnly], ["full", full]] as const) {
      const seen = await watch;
      expect(seen.size, `${name} watch: outcomes seen`).toBe(600);
      const repeated = [...seen].filter(([, n]) => n !== 1);
      expect(repeated, `${name} watch: outcomes repeated`).toEqual([]);
    }
    const runJob = await ran;
    expect(runJob.state).toBe("JOB_STATE_SUCCEEDED");
    expect(runOutcomes.size, "runJob: outcomes seen").toBe(600);
    expect([...runOutcomes].filter(([, n]) => n !== 1), "runJob: outcomes repeated").toEqual([]);
    expect((await client.listJobs(100)).filter((j) => j.name === "failover-runjob"), "runJob: one job however many calls").toHaveLength(1);
    for (const r of await client.getResults(runJob.jobId)) expect(saxpy.check(runInputs[r.taskIndex]!, r.output).ok, `runJob task ${r.taskIndex}`).toBe(true);
    runClient.close();
    const results = await client.getResults(jobId);
    expect(results.length).toBe(600);
    for (const r of results) expect(saxpy.check(inputs[r.taskIndex]!, r.output).ok, `task ${r.taskIndex}`).toBe(true);
  }, 180_000);
});
