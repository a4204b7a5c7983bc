// A RunJob client paused with SIGSTOP while its job runs. The scheduler must not hold the job's
// outcomes for it without bound: the stream is dropped when its outbox is full (counted in
// distx_watch_streams_dropped_total{rpc="RunJob"}), and when the client wakes up, the typed client
// resumes as a watch and still sees every task's outcome exactly once. Real processes, TLS, token.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../../common/paths.js";
import { fixtureKernel } from "../../helpers/fixtures.js";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";
import { until } from "../../helpers/poll.js";
import { MiB, mib, procMemory, schedulerPid } from "../../helpers/rss.js";

// Under the typed client's inline limit (10,000 tasks, 4 MiB), so the job goes by RunJob itself
// (a bigger one is streamed up and then watched by WatchJob); its ~9,000 outcomes are far more
// than one outbox (256 KiB, ~1,600 outcomes) plus HTTP/2's window let through to a sleeping reader.
const TASKS = 9_000;
let t: TestCluster;

beforeAll(async () => {
  t = await startTestCluster("paused-runjob-client", { agents: 2 });
}, 60_000);

afterAll(async () => {
  await t?.stop();
});

/** The client: runs the job by RunJob, counts each task's outcome, prints a JSON summary. */
function clientScript(kernelId: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "distx-paused-client-"));
  const file = path.join(dir, "client.mjs");
  const clientModule = path.join(repoRoot(), "dist", "client", "index.js");
  writeFileSync(
    file,
    `import { DistributeXClient } from ${JSON.stringify(clientModule)};
const client = new DistributeXClient(${JSON.stringify(t.address)}, { tokenFile: ${JSON.stringify(t.cluster.adminTokenFile)}, ca: ${JSON.stringify(t.cluster.credentialFiles().caFile)} });
const input = Buffer.alloc(64);
input.writeUInt32LE(400000, 0); // a little work per task: the job runs for seconds
const counts = new Map();
let announced = false;
const job = await client.runJob({ kernelId: ${JSON.stringify(kernelId)}, inputs: Array.from({ length: ${TASKS} }, () => input), skipResultCache: true }, (ev) => {
  if (!ev.task) return;
  counts.set(ev.task.taskIndex, (counts.get(ev.task.taskIndex) ?? 0) + 1);
  if (!announced) { announced = true; console.log("first-outcome " + ev.jobId); }
});
console.log(JSON.stringify({ state: job.state, jobId: job.jobId, distinct: counts.size, repeated: [...counts.values()].filter((n) => n !== 1).length }));
client.close();
`,
  );
  return file;
}

async function droppedRunJobs(): Promise<number> {
  const text = await (await fetch(`http://${await t.cluster.adminAddress("scheduler")}/metrics`)).text();
  const m = /^distx_watch_streams_dropped_total\{rpc="RunJob"\} (\d+)/m.exec(text);
  if (!m) throw new Error(`no RunJob drop counter in /metrics: ${text.split("\n").filter((l) => l.includes("dropped")).join(" | ")}`);
  return Number(m[1]);
}

describe("a RunJob client paused while its job runs", () => {
  it("is dropped, not buffered for; on waking it resumes and sees every outcome once", async () => {
    const { kernelId } = await t.client.registerKernel(await fixtureKernel("echo"), { name: "echo" });
    const pid = schedulerPid(t.cluster);
    const before = procMemory(pid, "VmRSS");
    expect(await droppedRunJobs()).toBe(0);

    const child = spawn(process.execPath, [clientScript(kernelId)], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    try {
      await until("the client's first outcome", async () => {
        if (child.exitCode !== null) throw new Error(`the client exited ${child.exitCode}: ${err}${out}`);
        return out.includes("first-outcome ");
      }, 60_000);
      const jobId = /first-outcome (\S+)/.exec(out)![1]!;
      child.kill("SIGSTOP");
      // The job runs to its end while the client sleeps; its stream is dropped on the way.
      await until("the job to end", async () => ["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED"].includes((await t.client.getJob(jobId)).state), 240_000);
      await until("the paused RunJob stream to be dropped", async () => (await droppedRunJobs()) >= 1, 10_000);
      const peak = procMemory(pid, "VmHWM");
      console.log(`scheduler RSS ${mib(before)} before, peak ${mib(peak)} with the client paused`);
      // The job itself (9,000 tasks, their results) and one bounded outbox: nowhere near the
      // ~3 MiB of outcome objects per paused reader that an unbounded stream would queue, plus
      // the job; the bound is loose enough for GC slack on a busy machine.
      expect(peak - before).toBeLessThan(192 * MiB);
      child.kill("SIGCONT");
      const code = await Promise.race([exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 60_000))]);
      expect(code, err).toBe(0);
      const summary = JSON.parse(out.trim().split("\n").at(-1)!) as { state: string; jobId: string; distinct: number; repeated: number };
      expect(summary).toEqual({ state: "JOB_STATE_SUCCEEDED", jobId, distinct: TASKS, repeated: 0 });
    } finally {
      if (child.exitCode === null) {
        child.kill("SIGCONT");
        child.kill("SIGKILL");
      }
    }
  }, 360_000);
});
