// What the live dashboard shows, built from the scheduler's own state: nodes (profile, load,
// forecast, a short load history), running and recent jobs with progress, and alerts.
// The history is sampled here once a second so every browser sees the same series and a page
// opened late still gets the last few minutes.
import type { SchedulerCore } from "../core.js";
import type { JobRecord } from "../model.js";
import type { NodeRegistry } from "../registry.js";
import type { AlertBus, AlertEvent } from "../alerts/bus.js";
import type { SchedulerMetrics } from "../metrics.js";

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

export interface DashJob {
  id: string;
  name: string;
  state: string;
  tasks: number;
  succeeded: number;
  failed: number;
  running: number;
  pending: number;
  submittedAtMs: number;
  finishedAtMs: number;
}

export interface DashSnapshot {
  atMs: number;
  nodes: DashNode[];
  jobs: DashJob[];
  alerts: AlertEvent[];
  recentAlerts: AlertEvent[];
  totals: { nodesReady: number; jobsRunning: number; queueDepth: number; tasksDone: number };
  /** Present in the first message only: nodeId → [cpu[], forecast[]] oldest first. */
  history?: Record<string, [number[], number[]]>;
  historyIntervalMs: number;
}

const short = (s: string) => s.replace(/^(JOB|TASK|NODE)_STATE_/, "").toLowerCase();
const RECENT_JOBS = 20;

export class DashboardState {
  private readonly history = new Map<string, { cpu: number[]; forecast: number[] }>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly core: SchedulerCore,
    private readonly nodes: NodeRegistry,
    private readonly alerts: AlertBus,
    private readonly metrics: SchedulerMetrics,
    readonly intervalMs = 1000,
    private readonly historyPoints = 120,
  ) {}

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
    const all = this.core.listJobs(Number.MAX_SAFE_INTEGER);
    const running = all.filter((j) => j.state === "JOB_STATE_PENDING" || j.state === "JOB_STATE_RUNNING");
    const finished = all.filter((j) => !running.includes(j)).slice(0, RECENT_JOBS);
    let queueDepth = 0;
    let tasksDone = 0;
    for (const j of all) {
      queueDepth += j.counts.TASK_STATE_PENDING;
      tasksDone += j.counts.TASK_STATE_SUCCEEDED + j.counts.TASK_STATE_FAILED;
    }
    const snap: DashSnapshot = {
      atMs: Date.now(),
      nodes,
      jobs: [...running, ...finished].map(dashJob),
      alerts: this.alerts.activeAlerts(),
      recentAlerts: this.alerts.recentResolved().slice(0, 20),
      totals: { nodesReady: ready, jobsRunning: running.length, queueDepth, tasksDone },
      historyIntervalMs: this.intervalMs,
    };
    if (withHistory) snap.history = Object.fromEntries([...this.history].map(([id, h]) => [id, [h.cpu, h.forecast]]));
    return snap;
  }
}

function dashJob(j: JobRecord): DashJob {
  return {
    id: j.id,
    name: j.name,
    state: short(j.state),
    tasks: j.tasks.length,
    succeeded: j.counts.TASK_STATE_SUCCEEDED,
    failed: j.counts.TASK_STATE_FAILED,
    running: j.counts.TASK_STATE_RUNNING + j.counts.TASK_STATE_ASSIGNED,
    pending: j.counts.TASK_STATE_PENDING,
    submittedAtMs: j.submittedAtMs,
    finishedAtMs: j.finishedAtMs,
  };
}

const round = (v: number) => Math.round(v * 1000) / 1000;

/** Seconds from now to a unix-ms time, 0 once it is past; -1 without one. */
function secondsUntil(atMs: number | undefined): number {
  return atMs === undefined ? -1 : Math.max(0, atMs - Date.now()) / 1000;
}
