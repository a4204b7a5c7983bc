// What the live dashboard shows, built from the scheduler's own state: nodes (profile, load,
// forecast, a short load history), totals and the grouped alerts on the live stream; the job
// table, a job's page and a node's page on request (views.ts), each bounded.
// The history is sampled here once a second so every browser sees the same series and a page
// opened late still gets the last few minutes.
import type { SchedulerCore } from "../core.js";
import type { NodeRegistry } from "../registry.js";
import type { AlertBus, AlertEvent } from "../alerts/bus.js";
import type { SchedulerMetrics } from "../metrics.js";
import { AlertGroups, type AlertGroupsView } from "./alert-groups.js";
import { jobDetail, listJobs, nodeDetail, short, type JobDetail, type JobList, type JobListQuery, type NodeDetail } from "./views.js";

export interface DashNode {
  id: string;
  host: string;
  state: string;
  cpu: string;
  cores: number;
  memoryBytes: number;
  gpus: string[];
  workers: number;
  speed: number;
  labels: Record<string, string>;
  cpuUtil: number;
  memUsedBytes: number;
  running: number;
  assigned: number;
  capacity: number;
  completed: number;
  /** Forecast CPU utilisation, -1 when no forecaster has spoken for this node. */
  forecast: number;
  /** Seconds to the node's predicted saturation (0 once past), -1 when none is predicted. */
  saturationInSeconds: number;
  agentVersion: string;
  /** The host's own load 0..1 (CPU use minus the agent's), and what placement forecasts for it (-1: none yet). */
  hostLoad: number;
  hostLoadForecast: number;
  /** Why the agent backs off for its host's load ("" when it does not). */
  backingOff: string;
  reservedCores: number;
}

export interface DashSnapshot {
  atMs: number;
  nodes: DashNode[];
  alerts: AlertGroupsView;
  totals: { nodesReady: number; jobsRunning: number; queueDepth: number; tasksDone: number };
  /** Present in the first message only: nodeId → [cpu[], forecast[]] oldest first. */
  history?: Record<string, [number[], number[]]>;
  historyIntervalMs: number;
}


export class DashboardState {
  private readonly history = new Map<string, { cpu: number[]; forecast: number[] }>();
  private timer?: NodeJS.Timeout;
  readonly alertGroups = new AlertGroups();

  constructor(
    private readonly core: SchedulerCore,
    private readonly nodes: NodeRegistry,
    private readonly alerts: AlertBus,
    private readonly metrics: SchedulerMetrics,
    readonly intervalMs = 1000,
    private readonly historyPoints = 120,
  ) {
    alerts.on("alert", (a: AlertEvent) => this.alertGroups.add(a));
  }

  start(onTick: () => void): void {
    this.timer = setInterval(() => {
      this.sample();
      onTick();
    }, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private sample(): void {
    const seen = new Set<string>();
    for (const n of this.nodes.all()) {
      if (n.state === "NODE_STATE_DOWN") continue;
      seen.add(n.id);
      let h = this.history.get(n.id);
      if (!h) this.history.set(n.id, (h = { cpu: [], forecast: [] }));
      h.cpu.push(round(n.load?.cpuUtilization ?? 0));
      h.forecast.push(round(this.metrics.forecasts.get(n.id)?.cpuUtilization ?? -1));
      if (h.cpu.length > this.historyPoints) {
        h.cpu.shift();
        h.forecast.shift();
      }
    }
    for (const id of this.history.keys()) if (!seen.has(id)) this.history.delete(id);
  }

  snapshot(withHistory: boolean): DashSnapshot {
    const nodes: DashNode[] = [];
    let ready = 0;
    for (const n of this.nodes.all()) {
      if (n.state === "NODE_STATE_DOWN") continue;
      if (n.state === "NODE_STATE_READY") ready++;
      const p = n.profile;
      nodes.push({
        id: n.id,
        host: p.hostname,
        state: short(n.state),
        cpu: p.cpu?.model ?? "",
        cores: p.cpu?.logicalCores ?? 0,
        memoryBytes: Number(p.memoryBytes),
        gpus: p.gpus.map((g) => g.model),
        workers: p.workers,
        speed: round(n.speed),
        labels: p.labels,
        cpuUtil: round(n.load?.cpuUtilization ?? 0),
        memUsedBytes: Number(n.load?.memoryUsedBytes ?? 0),
        running: n.load?.runningTasks ?? 0,
        assigned: n.assigned,
        capacity: n.capacity,
        completed: n.completed,
        forecast: round(this.metrics.forecasts.get(n.id)?.cpuUtilization ?? -1),
        saturationInSeconds: secondsUntil(this.metrics.predictedCrossings.get(n.id)),
        agentVersion: n.agentVersion,
        hostLoad: round(n.load ? Math.max(0, n.load.cpuUtilization - n.load.agentCpuUtilization) : 0),
        hostLoadForecast: round(this.core.placement.hostLoadForecast(n.id) ?? -1),
        backingOff: n.backingOff,
        reservedCores: n.reservedCores,
      });
    }
    nodes.sort((a, b) => (a.host + a.id).localeCompare(b.host + b.id));
    let queueDepth = 0;
    let tasksDone = 0;
    let jobsRunning = 0;
    for (const j of this.core.listJobs(Number.MAX_SAFE_INTEGER)) {
      if (j.state === "JOB_STATE_PENDING" || j.state === "JOB_STATE_RUNNING") jobsRunning++;
      queueDepth += j.counts.TASK_STATE_PENDING;
      tasksDone += j.counts.TASK_STATE_SUCCEEDED + j.counts.TASK_STATE_FAILED;
    }
    const snap: DashSnapshot = {
      atMs: Date.now(),
      nodes,
      alerts: this.alertGroups.view(),
      totals: { nodesReady: ready, jobsRunning, queueDepth, tasksDone },
      historyIntervalMs: this.intervalMs,
    };
    if (withHistory) snap.history = Object.fromEntries([...this.history].map(([id, h]) => [id, [h.cpu, h.forecast]]));
    return snap;
  }

  /** A page of the job table (filtered, at most JOB_PAGE_MAX rows). */
  jobs(q: JobListQuery): JobList {
    return listJobs(this.core, q);
  }

  /** One job, aggregated; undefined when this scheduler does not hold it. */
  job(id: string): JobDetail | undefined {
    const j = this.core.peekJob(id);
    return j && jobDetail(j, this.nodes);
  }

  /** One node with its load and forecast history; undefined when unknown. */
  node(id: string): (NodeDetail & { history: [number[], number[]] }) | undefined {
    const n = this.nodes.get(id);
    if (!n) return undefined;
    const h = this.history.get(id);
    return { ...nodeDetail(n, this.core, this.metrics.forecasts.get(id)), history: [h?.cpu ?? [], h?.forecast ?? []] };
  }
}

const round = (v: number) => Math.round(v * 1000) / 1000;

/** Seconds from now to a unix-ms time, 0 once it is past; -1 without one. */
function secondsUntil(atMs: number | undefined): number {
  return atMs === undefined ? -1 : Math.max(0, atMs - Date.now()) / 1000;
}
