// The dashboard's drill-down answers, each bounded whatever the cluster's size: a page of the
// job table (rows and bytes capped), one job aggregated (counts by state, a capped list of
// failures, tasks per node, a run-time histogram: a job of 10^5 tasks never ships 10^5 rows),
// and one node (hardware, calibrated speed, load against forecast, a capped list of its tasks).
import type { SchedulerCore } from "../core.js";
import { parseTaskKey, type JobRecord, type TaskStateName } from "../model.js";
import type { NodeEntry, NodeRegistry } from "../registry.js";

export const JOB_PAGE_MAX = 100;
const FAILURES_MAX = 50;
const PLACEMENT_NODES_MAX = 100;
const NODE_TASKS_MAX = 100;
const TEXT_MAX = 300;

export const short = (s: string) => s.replace(/^(JOB|TASK|NODE)_STATE_/, "").toLowerCase();
const clip = (s: string, n = TEXT_MAX) => (s.length > n ? s.slice(0, n - 1) + "…" : s);

export interface JobRow {
  id: string;
  name: string;
  state: string;
  /** Who submitted it: the tenant and the public id of the token ("" with --insecure). */
  tenant: string;
  submitter: string;
  tasks: number;
  succeeded: number;
  failed: number;
  running: number;
  pending: number;
  submittedAtMs: number;
  startedAtMs: number;
  finishedAtMs: number;
}

export function jobRow(j: JobRecord): JobRow {
  return {
    id: j.id,
    name: clip(j.name, 120),
    state: short(j.state),
    tenant: j.tenant ?? "default",
    submitter: j.tokenId ?? "",
    tasks: j.tasks.length,
    succeeded: j.counts.TASK_STATE_SUCCEEDED,
    failed: j.counts.TASK_STATE_FAILED,
    running: j.counts.TASK_STATE_RUNNING + j.counts.TASK_STATE_ASSIGNED,
    pending: j.counts.TASK_STATE_PENDING,
    submittedAtMs: j.submittedAtMs,
    startedAtMs: j.startedAtMs,
    finishedAtMs: j.finishedAtMs,
  };
}

export interface JobListQuery {
  /** A short job state (running, failed, …) or "" for all. */
  state: string;
  /** Matches the id, name, tenant or submitter (case-insensitive substring). */
  text: string;
  offset: number;
  limit: number;
}

export interface JobList {
  rows: JobRow[];
  /** Jobs matching the filter (the rows are offset..offset+limit of them). */
  total: number;
  offset: number;
  limit: number;
  /** Jobs held, by state, ignoring the filter: the filter buttons' counts. */
  byState: Record<string, number>;
}

export function parseJobListQuery(url: URL): JobListQuery {
  const int = (name: string, dflt: number, max: number) => {
    const v = Number.parseInt(url.searchParams.get(name) ?? "", 10);
    return Number.isFinite(v) && v >= 0 ? Math.min(v, max) : dflt;
  };
  return {
    state: (url.searchParams.get("state") ?? "").slice(0, 20),
    text: (url.searchParams.get("q") ?? "").slice(0, 100).toLowerCase(),
    offset: int("offset", 0, 1e9),
    limit: Math.max(1, int("limit", 50, JOB_PAGE_MAX)),
  };
}

export function listJobs(core: SchedulerCore, q: JobListQuery): JobList {
  const byState: Record<string, number> = {};
  const matching: JobRecord[] = [];
  for (const j of core.listJobs(Number.MAX_SAFE_INTEGER)) {
    const st = short(j.state);
    byState[st] = (byState[st] ?? 0) + 1;
    if (q.state && st !== q.state) continue;
    if (q.text && ![j.id, j.name, j.tenant ?? "", j.tokenId ?? ""].some((s) => s.toLowerCase().includes(q.text))) continue;
    matching.push(j);
  }
  return { rows: matching.slice(q.offset, q.offset + q.limit).map(jobRow), total: matching.length, offset: q.offset, limit: q.limit, byState };
}

export interface FailedTaskRow {
  index: number;
  attempt: number;
  code: string;
  message: string;
  nodeId: string;
}

export interface JobDetail {
  job: JobRow;
  kernelId: string;
  priority: number;
  maxAttempts: number;
  timeoutMs: number;
  retries: number;
  counts: Record<string, number>;
  /** The first failures by task index (at most 50); failuresTotal counts them all. */
  failures: FailedTaskRow[];
  failuresTotal: number;
  failureCodes: Record<string, number>;
  /** Tasks per node that holds or ran them (at most 100 nodes, busiest first); nodesTotal counts them all. */
  placement: { nodeId: string; host: string; running: number; succeeded: number; failed: number; other: number }[];
  nodesTotal: number;
  /** Run times of succeeded tasks and of failures that ran: counts[i] are runs of edgesMs[i]..edgesMs[i+1] ms. */
  histogram: { edgesMs: number[]; counts: number[] };
  runMs: { p50: number; p95: number; max: number; n: number };
}

// 1-2-5 buckets from 1 ms to 1000 s: a run time from a tiny kernel to a long one lands somewhere readable.
const EDGES = [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000, Infinity];

export function jobDetail(job: JobRecord, nodes: NodeRegistry): JobDetail {
  const failures: FailedTaskRow[] = [];
  const failureCodes: Record<string, number> = {};
  const perNode = new Map<string, { running: number; succeeded: number; failed: number; other: number }>();
  const counts = new Array<number>(EDGES.length - 1).fill(0);
  const runs: number[] = [];
  let failuresTotal = 0;
  for (const t of job.tasks) {
    if (t.state === "TASK_STATE_FAILED") {
      failuresTotal++;
      const code = clip(t.error?.code ?? "ERROR", 40);
      // Codes come from a fixed set; the cap only guards against a stranger one.
      if (failureCodes[code] !== undefined || Object.keys(failureCodes).length < 20) failureCodes[code] = (failureCodes[code] ?? 0) + 1;
      if (failures.length < FAILURES_MAX) failures.push({ index: t.index, attempt: t.attempt, code, message: clip(t.error?.message ?? ""), nodeId: t.nodeId });
    }
    if (t.nodeId) {
      let p = perNode.get(t.nodeId);
      if (!p) perNode.set(t.nodeId, (p = { running: 0, succeeded: 0, failed: 0, other: 0 }));
      const k = placementKey(t.state);
      p[k]++;
    }
    // A failure with no run time (lost, refused) did not run: it would crowd the first bucket.
    if (t.state === "TASK_STATE_SUCCEEDED" || (t.state === "TASK_STATE_FAILED" && t.runMs > 0)) {
      runs.push(t.runMs);
      let i = 0;
      while (t.runMs >= EDGES[i + 1]!) i++;
      counts[i]!++;
    }
  }
  const placement = [...perNode]
    .map(([nodeId, c]) => ({ nodeId, host: nodes.get(nodeId)?.profile.hostname ?? "", ...c }))
    .sort((a, b) => b.running + b.succeeded + b.failed + b.other - (a.running + a.succeeded + a.failed + a.other))
    .slice(0, PLACEMENT_NODES_MAX);
  // Trim empty buckets at both ends so the chart spans what happened.
  let lo = counts.findIndex((c) => c > 0);
  let hi = counts.length - 1 - [...counts].reverse().findIndex((c) => c > 0);
  if (lo < 0) (lo = 0), (hi = -1);
  runs.sort((a, b) => a - b);
  const pick = (q: number) => (runs.length ? runs[Math.min(runs.length - 1, Math.floor(q * runs.length))]! : 0);
  return {
    job: jobRow(job),
    kernelId: job.kernelId,
    priority: job.priority,
    maxAttempts: job.maxAttempts,
    timeoutMs: job.timeoutMs,
    retries: job.retries,
    counts: Object.fromEntries(Object.entries(job.counts).map(([k, v]) => [short(k), v])),
    failures,
    failuresTotal,
    failureCodes,
    placement,
    nodesTotal: perNode.size,
    histogram: { edgesMs: EDGES.slice(lo, hi + 2).map((e) => (e === Infinity ? -1 : e)), counts: counts.slice(lo, hi + 1) },
    runMs: { p50: pick(0.5), p95: pick(0.95), max: runs.at(-1) ?? 0, n: runs.length },
  };
}

function placementKey(s: TaskStateName): "running" | "succeeded" | "failed" | "other" {
  if (s === "TASK_STATE_RUNNING" || s === "TASK_STATE_ASSIGNED") return "running";
  if (s === "TASK_STATE_SUCCEEDED") return "succeeded";
  if (s === "TASK_STATE_FAILED") return "failed";
  return "other";
}

export interface NodeDetail {
  id: string;
  host: string;
  state: string;
  platform: string;
  arch: string;
  cpu: string;
  physicalCores: number;
  logicalCores: number;
  baseGhz: number;
  simd: string[];
  memoryBytes: number;
  gpus: { model: string; memoryBytes: number }[];
  gpuBackend: string;
  workers: number;
  labels: Record<string, string>;
  kernelKinds: string[];
  /** The calibrated speed the placement uses (reference-kernel Gops/s per worker; 1 uncalibrated). */
  speed: number;
  calibration: { kernel: string; opsPerSecond: number; wallMs: number } | null;
  registeredAtMs: number;
  lastHeartbeatMs: number;
  cpuUtil: number;
  memUsedBytes: number;
  assigned: number;
  capacity: number;
  completed: number;
  forecast: number;
  forecastHorizonSeconds: number;
  /** Tasks placed on it now (at most 100); tasksTotal counts them all. */
  tasks: { jobId: string; jobName: string; index: number; state: string }[];
  tasksTotal: number;
}

export function nodeDetail(n: NodeEntry, core: SchedulerCore, forecast: { cpuUtilization: number; horizonSeconds: number } | undefined): NodeDetail {
  const p = n.profile;
  const tasks: NodeDetail["tasks"] = [];
  for (const key of n.tasks) {
    if (tasks.length >= NODE_TASKS_MAX) break;
    const { jobId, taskIndex: index } = parseTaskKey(key);
    const job = core.peekJob(jobId);
    tasks.push({ jobId, jobName: clip(job?.name ?? "", 120), index, state: short(job?.tasks[index]?.state ?? "") });
  }
  return {
    id: n.id,
    host: p.hostname,
    state: short(n.state),
    platform: p.platform,
    arch: p.arch,
    cpu: p.cpu?.model ?? "",
    physicalCores: p.cpu?.physicalCores ?? 0,
    logicalCores: p.cpu?.logicalCores ?? 0,
    baseGhz: p.cpu?.baseGhz ?? 0,
    simd: p.cpu?.simd ?? [],
    memoryBytes: Number(p.memoryBytes),
    gpus: p.gpus.map((g) => ({ model: g.model, memoryBytes: Number(g.memoryBytes) })),
    gpuBackend: p.gpuBackend,
    workers: p.workers,
    labels: p.labels,
    kernelKinds: p.kernelKinds.map(String),
    speed: n.speed,
    calibration: p.calibration ? { kernel: p.calibration.kernel, opsPerSecond: p.calibration.opsPerSecond, wallMs: p.calibration.wallMs } : null,
    registeredAtMs: n.registeredAtMs,
    lastHeartbeatMs: n.lastHeartbeatMs,
    cpuUtil: n.load?.cpuUtilization ?? 0,
    memUsedBytes: Number(n.load?.memoryUsedBytes ?? 0),
    assigned: n.assigned,
    capacity: n.capacity,
    completed: n.completed,
    forecast: forecast ? Math.min(1, Math.max(0, forecast.cpuUtilization)) : -1,
    forecastHorizonSeconds: forecast?.horizonSeconds ?? 0,
    tasks,
    tasksTotal: n.tasks.size,
  };
}
