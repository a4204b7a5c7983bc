// Defect 2 of the reliability issue: a WatchJob opened before the job ends must see every task's
// outcome exactly once and then the final snapshot, in both modes. The updates of one batch from
// an agent used to be handled concurrently, and the first to see every task finished sent the
// final snapshot and closed the stream before the others had sent their outcomes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DistributeXClient, type JobEvent } from "../../../client/index.js";
import { exampleKernels } from "../../../kernels/reference/index.js";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";
import { exampleWasm } from "../../helpers/fixtures.js";
import { freePort } from "../../helpers/net.js";

const saxpy = exampleKernels.saxpy!;
const TERMINAL_TASK = new Set(["TASK_STATE_SUCCEEDED", "TASK_STATE_FAILED", "TASK_STATE_CANCELLED"]);
const TERMINAL_JOB = new Set(["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"]);

let t: TestCluster;
let kernelId: string;

beforeAll(async () => {
  t = await startTestCluster("watch-outcomes", { agents: 2, workersPerAgent: 1 });
  ({ kernelId } = await t.client.registerKernel(await exampleWasm("saxpy"), { name: "saxpy" }));
}, 120_000);

afterAll(async () => {
  await t?.stop();
});

interface WatchRun {
  openedBeforeEnd: boolean;
  outcomes: Map<number, number>;
  afterFinal: number;
  final?: JobEvent["job"];
}

async function watchOnce(tasks: number, finalOnly: boolean, seed: number): Promise<WatchRun> {
  const inputs = saxpy.makeTasks({ tasks, size: tasks * 8, seed });
  const { jobId } = await t.client.submitJob({ kernelId, inputs, skipResultCache: true, name: `watch-${tasks}-${finalOnly}` });
  const run: WatchRun = { openedBeforeEnd: false, outcomes: new Map(), afterFinal: 0 };
  let first = true;
  for await (const ev of t.client.watchJob(jobId, { finalOnly })) {
    if (first) {
      first = false;
      run.openedBeforeEnd = !!ev.job && !TERMINAL_JOB.has(ev.job.state);
    }
    if (run.final) run.afterFinal++;
    if (ev.task && TERMINAL_TASK.has(ev.task.state)) run.outcomes.set(ev.task.taskIndex, (run.outcomes.get(ev.task.taskIndex) ?? 0) + 1);
    if (ev.job && TERMINAL_JOB.has(ev.job.state)) run.final = ev.job;
  }
  return run;
}

function expectComplete(run: WatchRun, tasks: number): void {
  expect(run.final?.state).toBe("JOB_STATE_SUCCEEDED");
  expect(run.final?.counts?.succeeded).toBe(tasks);
  expect(run.afterFinal, "events after the final snapshot").toBe(0);
  const missing = Array.from({ length: tasks }, (_, i) => i).filter((i) => !run.outcomes.has(i));
  const repeated = [...run.outcomes].filter(([, n]) => n !== 1).map(([i]) => i);
  expect(missing.length, `outcomes missing before the final snapshot: ${missing.slice(0, 20).join(",")}`).toBe(0);
  expect(repeated.length, `outcomes seen more than once: ${repeated.slice(0, 20).join(",")}`).toBe(0);
}

describe.each([false, true])("WatchJob (final_only=%s)", (finalOnly) => {
  it("a watch opened before the end of a 64-task job sees all 64 outcomes once, then the final snapshot (5 runs)", async () => {
    let opened = 0;
    for (let r = 0; r < 5; r++) {
      const run = await watchOnce(64, finalOnly, 10 + r);
      if (!run.openedBeforeEnd) continue; // the job ended before the watch began: nothing to check
      opened++;
      expectComplete(run, 64);
    }
    expect(opened, "runs whose watch opened before the job ended").toBeGreaterThan(0);
  }, 120_000);

  it("a watch opened before the end of a 10,000-task job sees all 10,000 outcomes once (2 runs)", async () => {
    for (let r = 0; r < 2; r++) {
      const run = await watchOnce(10_000, finalOnly, 100 + r);
      expect(run.openedBeforeEnd).toBe(true);
      expectComplete(run, 10_000);
    }
  }, 180_000);
});

describe("WatchJob whose first stream fails before any message", () => {
  // Found by the chaos harness: the client asked for a *resumed* watch on every retry, even when
  // the first stream had delivered nothing. For a job that had ended meanwhile, the scheduler then
  // replayed every outcome before the first job snapshot the watcher ever saw. A watch that never
  // saw the job running is a fresh watch: the final snapshot first (and alone), as when it opens late.
  it.each([false, true])("gets the job snapshot first, as a fresh watch (final_only=%s)", async (finalOnly) => {
    const inputs = saxpy.makeTasks({ tasks: 8, size: 64, seed: 7 });
    const { jobId } = await t.client.submitJob({ kernelId, inputs, skipResultCache: true, name: "watch-first-fails" });
    for (;;) {
      const job = await t.client.getJob(jobId);
      if (TERMINAL_JOB.has(job.state)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    // The first address has nobody listening: the first stream fails UNAVAILABLE, the retry reaches the scheduler.
    const dead = await freePort();
    const client = new DistributeXClient(`127.0.0.1:${dead},${t.address}`, { tokenFile: t.cluster.adminTokenFile, retry: { deadlineMs: 20_000 } });
    try {
      const events: string[] = [];
      for await (const ev of client.watchJob(jobId, { finalOnly })) events.push(ev.job ? `job:${ev.job.state}` : `task:${ev.task?.taskIndex}`);
      expect(events).toEqual(["job:JOB_STATE_SUCCEEDED"]);
    } finally {
      client.close();
    }
  }, 60_000);
});
