// What the CLI shows of a job: the jobs table, the progress bar of a job it waits on, the
// outcome line, and outputs written to files.
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import cliProgress from "cli-progress";
import type { DistributeXClient, Job, TaskResult } from "../../client/index.js";
import { shortState } from "../../common/types.js";
import { formatMs, table as makeTable } from "../util.js";
export function jobTable(jobs: Job[]): string {
  const table = makeTable(["job", "name", "state", "tasks", "done", "failed", "retries", "submitted", "duration"]);
  for (const j of jobs) {
    const end = j.finishedAtMs || Date.now();
    table.push([
      j.jobId,
      j.name || "-",
      shortState(j.state),
      j.taskCount,
      j.counts?.succeeded ?? 0,
      j.counts?.failed ?? 0,
      j.retries,
      new Date(j.submittedAtMs).toISOString().replace("T", " ").slice(0, 19),
      formatMs(end - j.submittedAtMs),
    ]);
  }
  // Jobs that no node could take say why, under the table (Nomad style: "0/2 nodes: 2 have fewer than 4096 cores").
  const waiting = jobs.filter((j) => j.unschedulableReason).map((j) => `${j.jobId} cannot be placed: ${j.unschedulableReason}`);
  return [table.toString(), ...waiting].join("\n");
}

/**
 * Submits and waits on one call (RunJob), shows a progress bar while the job runs, and returns the
 * final job and results. The bar starts at the first snapshot, which names the job.
 */
export async function submitAndWatch(
  client: DistributeXClient,
  options: Parameters<DistributeXClient["submitJob"]>[0],
  showProgress: boolean,
): Promise<{ job: Job; results: TaskResult[]; elapsedMs: number }> {
  const started = performance.now();
  let bar: cliProgress.SingleBar | undefined;
  // Counted by task index: a watch replays tasks that ended before it began, and snapshots carry counts.
  const ended = new Set<number>();
  let fromSnapshot = 0;
  const job = await client.runJob(options, (ev) => {
    if (!showProgress) return;
    if (ev.job && !bar) {
      bar = new cliProgress.SingleBar(
        { format: `${ev.job.jobId.slice(0, 12)}… [{bar}] {percentage}% | {value}/{total} tasks | failed {failed} | retries {retries} | {duration_formatted}`, hideCursor: true },
        cliProgress.Presets.shades_classic,
      );
      bar.start(ev.job.taskCount, 0, { failed: 0, retries: 0 });
    }
    if (!bar) return;
    if (ev.job) {
      const c = ev.job.counts;
      fromSnapshot = (c?.succeeded ?? 0) + (c?.failed ?? 0) + (c?.cancelled ?? 0);
      bar.update(Math.max(fromSnapshot, ended.size), { failed: c?.failed ?? 0, retries: ev.job.retries });
    } else if (ev.task && ["TASK_STATE_SUCCEEDED", "TASK_STATE_FAILED", "TASK_STATE_CANCELLED"].includes(ev.task.state)) {
      ended.add(ev.task.taskIndex);
      bar.update(Math.max(fromSnapshot, ended.size));
    }
  });
  bar?.update(job.taskCount);
  bar?.stop();
  const results = await client.getResults(job.jobId);
  return { job, results, elapsedMs: performance.now() - started };
}

export function printJobOutcome(job: Job, results: TaskResult[], elapsedMs: number): void {
  const runMs = results.reduce((s, r) => s + r.runMs, 0);
  console.log(
    `job ${job.jobId} ${shortState(job.state)}: ${job.counts?.succeeded ?? 0}/${job.taskCount} tasks succeeded, ${job.counts?.failed ?? 0} failed, ${job.retries} retries`,
  );
  console.log(`timing: ${formatMs(elapsedMs)} submit-to-results, ${formatMs(runMs)} of kernel time across tasks`);
  if (job.firstError?.code) console.log(`first error: ${job.firstError.code}: ${job.firstError.message}`);
}

export async function writeOutputs(dir: string, results: TaskResult[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  await Promise.all(results.map((r) => writeFile(path.join(dir, `${r.taskIndex}.bin`), r.output)));
  console.log(`wrote ${results.length} outputs to ${dir}`);
}
