// Scheduler metrics (prom-client), in a registry of their own so several schedulers can live
// in one process (tests). Gauges that mirror state (jobs, tasks, agents, node load) are read
// at scrape time; counters and histograms are fed by SchedulerCore's events.
// Conventions: `distx_` prefix, base units (seconds, bytes, ratios 0..1), `_total` counters,
// bounded labels only: states, outcomes, alert names, and node ids (one per agent, forgotten
// with the node) — never a job or task id.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { resultOutputStreams } from "./services/output-service.js";
import { blobFetchStreams } from "./services/blob-service.js";
import { inboundRequests } from "./services/inbound-budget.js";
import type { SchedulerCore } from "./core.js";
import type { JobRecord, TaskRecord, TaskStateName } from "./model.js";
import type { NodeRegistry } from "./registry.js";
import { REJECT_REASONS, type RejectReason } from "./update-guard.js";

const TASK_STATES: TaskStateName[] = [
  "TASK_STATE_PENDING",
  "TASK_STATE_ASSIGNED",
  "TASK_STATE_RUNNING",
  "TASK_STATE_SUCCEEDED",
  "TASK_STATE_FAILED",
  "TASK_STATE_CANCELLED",
];
const JOB_STATES = ["pending", "running", "succeeded", "failed", "cancelled"] as const;
const NODE_STATES = ["ready", "draining", "down"] as const;
const short = (s: string) => s.replace(/^(JOB|TASK|NODE)_STATE_/, "").toLowerCase();

/** Latency buckets from 1 ms to 5 min: placement is sub-millisecond to seconds, tasks up to minutes. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export interface NodeForecast {
  /** Predicted CPU utilisation 0..1 over the forecaster's horizon. */
  cpuUtilization: number;
  horizonSeconds: number;
  atMs: number;
}

export class SchedulerMetrics {
  readonly registry = new Registry();
  readonly placements: Counter;
  readonly placementLatency: Histogram<"outcome">;
  readonly taskLatency: Histogram<"state">;
  readonly tasksSubmitted: Counter;
  readonly tasksFinished: Counter<"state">;
  readonly retries: Counter;
  readonly nodesLost: Counter;
  readonly rejectedUpdates: Counter<"reason">;
  readonly watchesDropped: Counter<"rpc">;
  readonly resultCacheHits: Counter;
  readonly forecastErrorRatio: Gauge;
  readonly alertsFired: Counter<"alertname" | "severity">;
  readonly webhookFailures: Counter;
  readonly rejectedRecords: Counter<"topic" | "reason">;
  /** Set by the forecaster (see SchedulerMonitoring.setNodeForecast / predictedSaturation). */
  readonly forecasts = new Map<string, NodeForecast>();
  /** Standing saturation predictions: node id → predicted crossing (unix ms); deleted when withdrawn. */
  readonly predictedCrossings = new Map<string, number>();
  /** The cluster's standing prediction (unix ms), if any. */
  clusterPredictedCrossing: number | undefined;

  constructor(core: SchedulerCore, nodes: NodeRegistry) {
    const registry = this.registry;
    collectDefaultMetrics({ register: registry });

    new Gauge({
      name: "distx_jobs",
      help: "Jobs the scheduler holds, by state (finished jobs count while retained).",
      labelNames: ["state"],
      registers: [registry],
      collect() {
        const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<string, number>;
        for (const job of core.listJobs(Number.MAX_SAFE_INTEGER)) counts[short(job.state)]! += 1;
        for (const s of JOB_STATES) this.set({ state: s }, counts[s]!);
      },
    });
    new Gauge({
      name: "distx_tasks",
      help: "Tasks of retained jobs, by state.",
      labelNames: ["state"],
      registers: [registry],
      collect() {
        const sums = taskCounts(core);
        for (const s of TASK_STATES) this.set({ state: short(s) }, sums[s]);
      },
    });
    new Gauge({
      name: "distx_result_output_streams",
      help: "GetResultOutput streams open (each holds about one 1 MiB chunk however slowly its client reads).",
      registers: [registry],
      collect() {
        this.set(resultOutputStreams.open);
      },
    });
    new Gauge({
      name: "distx_blob_fetch_streams",
      help: "FetchBlob streams open (each holds at most two 1 MiB chunks; one whose reader takes nothing for outputStallMs is reset).",
      registers: [registry],
      collect() {
        this.set(blobFetchStreams.open);
      },
    });
    new Gauge({
      name: "distx_inbound_request_bytes",
      help: "Whole sizes of the request messages over 2 MiB under way (bounded by maxInboundBytes).",
      registers: [registry],
      collect() {
        this.set(inboundRequests.heldBytes);
      },
    });
    new Counter({
      name: "distx_inbound_requests_stalled_total",
      help: "Request messages over 2 MiB whose bytes stopped coming for outputStallMs: dropped unused, their calls ended.",
      registers: [registry],
      collect() {
        this.reset();
        this.inc(inboundRequests.stalled);
      },
    });
    new Counter({
      name: "distx_inbound_requests_refused_total",
      help: "Request messages refused unread because maxInboundBytes of requests were already arriving (the caller may retry).",
      registers: [registry],
      collect() {
        this.reset();
        this.inc(inboundRequests.refused);
      },
    });
    new Gauge({
      name: "distx_queue_depth",
      help: "Tasks waiting at the scheduler for a node.",
      registers: [registry],
      collect() {
        this.set(taskCounts(core).TASK_STATE_PENDING);
      },
    });
    new Gauge({
      name: "distx_agents",
      help: "Agents known to the scheduler, by state (down agents are forgotten after a while).",
      labelNames: ["state"],
      registers: [registry],
      collect() {
        const counts: Record<string, number> = { ready: 0, draining: 0, down: 0 };
        for (const n of nodes.all()) counts[short(n.state)]! += 1;
        for (const s of NODE_STATES) this.set({ state: s }, counts[s]!);
      },
    });

    // Per-node load as the scheduler sees it from heartbeats, beside the forecast for the same node.
    const nodeGauge = (name: string, help: string, read: (nodeId: string) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ["node"],
        registers: [registry],
        collect() {
          this.reset(); // nodes come and go; a forgotten node must not linger
          for (const n of nodes.all()) {
            if (n.state === "NODE_STATE_DOWN") continue;
            const v = read(n.id);
            if (v !== undefined && Number.isFinite(v)) this.set({ node: n.id }, v);
          }
        },
      });
    nodeGauge("distx_node_cpu_utilization", "Host CPU utilisation 0..1 reported by the node's last heartbeat.", (id) => nodes.get(id)?.load?.cpuUtilization);
    nodeGauge("distx_node_memory_used_bytes", "Host memory in use reported by the node's last heartbeat.", (id) => {
      const v = nodes.get(id)?.load?.memoryUsedBytes;
      return v === undefined ? undefined : Number(v);
    });
    nodeGauge("distx_node_assigned_tasks", "Tasks placed on the node and not yet finished.", (id) => nodes.get(id)?.assigned);
    nodeGauge("distx_node_capacity_tasks", "Task slots the scheduler fills on the node (workers plus prefetch).", (id) => nodes.get(id)?.capacity);
    // Which placement policy this scheduler runs (the `placement` setting as the strategy built
    // from it names itself), and per node whether placement models its agent as yielding to the
    // host's own load (it runs niced; load-model.ts slowdownFactor): what an operator checks
    // after switching either.
    new Gauge({
      name: "distx_placement_policy",
      help: "1 for the placement policy in use (forecast, finish-time or capacity).",
      labelNames: ["policy"],
      registers: [registry],
      collect() {
        this.reset();
        this.set({ policy: core.placement.strategy.name }, 1);
      },
    });
    nodeGauge("distx_node_yields_to_host", "1 when placement models the node's agent as yielding to its host's load (it runs niced), else 0.", (id) => core.placement.yieldsToHost(id));
    nodeGauge("distx_node_forecast_cpu_utilization", "Forecast CPU utilisation 0..1 of the node over the forecaster's horizon.", (id) => this.forecasts.get(id)?.cpuUtilization);
    // Predicted saturation. The timestamp is what a rule should use: it stays right between
    // scrapes and after the crossing. Both series exist only while a prediction stands.
    const crossings = this.predictedCrossings;
    new Gauge({
      name: "distx_node_predicted_saturation_timestamp_seconds",
      help: "Unix time at which the forecaster predicts the node crosses the saturation threshold; absent when no saturation is predicted.",
      labelNames: ["node"],
      registers: [registry],
      collect() {
        this.reset();
        for (const [node, atMs] of crossings) this.set({ node }, atMs / 1000);
      },
    });
    new Gauge({
      name: "distx_node_predicted_saturation_seconds",
      help: "Seconds from this scrape to the node's predicted saturation (0 once it is past); absent when no saturation is predicted.",
      labelNames: ["node"],
      registers: [registry],
      collect() {
        this.reset();
        const now = Date.now();
        for (const [node, atMs] of crossings) this.set({ node }, Math.max(0, atMs - now) / 1000);
      },
    });
    const metrics = this;
    new Gauge({
      // A label, not a bare gauge: an unlabelled gauge always exports a value, and this one must be absent.
      name: "distx_cluster_predicted_saturation_timestamp_seconds",
      help: 'Unix time at which the forecaster predicts the cluster\'s mean utilisation crosses the saturation threshold (scope="cluster"); absent when none is predicted.',
      labelNames: ["scope"],
      registers: [registry],
      collect() {
        this.reset();
        if (metrics.clusterPredictedCrossing !== undefined) this.set({ scope: "cluster" }, metrics.clusterPredictedCrossing / 1000);
      },
    });

    this.tasksSubmitted = new Counter({ name: "distx_tasks_submitted_total", help: "Tasks accepted in submitted jobs.", registers: [registry] });
    this.tasksFinished = new Counter({
      name: "distx_tasks_finished_total",
      help: "Tasks that reached a final state, by state.",
      labelNames: ["state"],
      registers: [registry],
    });
    for (const s of ["succeeded", "failed", "cancelled"]) this.tasksFinished.inc({ state: s }, 0);
    this.placements = new Counter({ name: "distx_placements_total", help: "Task placements on nodes (retries place again).", registers: [registry] });
    this.placementLatency = new Histogram({
      name: "distx_placement_latency_seconds",
      help: "Time from a task entering the queue (submit or retry) to its placement on a node.",
      labelNames: ["outcome"],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    });
    this.taskLatency = new Histogram({
      name: "distx_task_latency_seconds",
      help: "Time from job submission to the task's final state, by final state.",
      labelNames: ["state"],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    });
    this.retries = new Counter({ name: "distx_task_retries_total", help: "Task attempts re-queued after a lost agent or a transient failure.", registers: [registry] });
    this.rejectedUpdates = new Counter({
      name: "distx_rejected_updates_total",
      help: "Task updates dropped because they did not come from the node and attempt the task was given to (update-guard.ts), and Kafka task-event records refused before decoding because their node signature was missing or wrong (one per record; record-verifier.ts).",
      labelNames: ["reason"],
      registers: [registry],
    });
    for (const reason of REJECT_REASONS) this.rejectedUpdates.inc({ reason }, 0);
    this.watchesDropped = new Counter({
      name: "distx_watch_streams_dropped_total",
      help: "WatchJob and RunJob streams dropped because their reader fell behind (over the outbox bound, watch-outbox.ts); the typed client resumes them.",
      labelNames: ["rpc"],
      registers: [registry],
    });
    for (const rpc of ["WatchJob", "RunJob"]) this.watchesDropped.inc({ rpc }, 0);
    this.nodesLost = new Counter({ name: "distx_nodes_lost_total", help: "Agents declared down (missed heartbeats or closed session).", registers: [registry] });
    this.resultCacheHits = new Counter({
      name: "distx_result_cache_hits_total",
      help: "Tasks answered from the result cache without running.",
      registers: [registry],
    });
    this.forecastErrorRatio = new Gauge({
      name: "distx_forecast_error_ratio",
      help: "Forecaster mean absolute error divided by the naive (last value) forecast's; below 1 beats naive.",
      registers: [registry],
    });
    this.alertsFired = new Counter({
      name: "distx_alerts_fired_total",
      help: "Alerts raised by the scheduler's alert bus, by alert name and severity.",
      labelNames: ["alertname", "severity"],
      registers: [registry],
    });
    // NaN until a forecaster reports: 0 would read as a perfect forecast.
    this.forecastErrorRatio.set(Number.NaN);
    for (const [alertname, severity] of [["AgentLost", "critical"], ["JobFailing", "warning"], ["PredictedSaturation", "warning"]] as const) {
      this.alertsFired.inc({ alertname, severity }, 0);
    }
    this.webhookFailures = new Counter({
      name: "distx_alert_webhook_failures_total",
      help: "Alert webhook deliveries that failed after all attempts.",
      registers: [registry],
    });

    core.on("job_submitted", (job: JobRecord) => this.tasksSubmitted.inc(job.tasks.length));
    // Per-task paths use labelled children resolved once: resolving labels costs more than observing.
    const placed = this.placementLatency.labels({ outcome: "placed" });
    core.on("placement", (_job: JobRecord, task: TaskRecord) => {
      this.placements.inc();
      if (task.queuedAtMs) placed.observe(Math.max(0, Date.now() - task.queuedAtMs) / 1000);
    });
    core.on("task_retry", () => this.retries.inc());
    const byState = new Map<string, { finished: { inc(): void }; latency: { observe(v: number): void } }>();
    core.on("task_finished", (job: JobRecord, task: TaskRecord) => {
      const state = short(task.state);
      let c = byState.get(state);
      if (!c) byState.set(state, (c = { finished: this.tasksFinished.labels({ state }), latency: this.taskLatency.labels({ state }) }));
      c.finished.inc();
      c.latency.observe(Math.max(0, Date.now() - job.submittedAtMs) / 1000);
    });
    core.on("node_down", () => this.nodesLost.inc());
    this.rejectedRecords = new Counter({
      name: "distx_rejected_records_total",
      help: "Kafka records dropped instead of used, by topic (submissions, node-load) and reason: the status SubmitJob would answer, or undecodable / oversized / malformed.",
      labelNames: ["topic", "reason"],
      registers: [registry],
    });
    core.on("record_rejected", (topic: string, reason: string) => this.rejectedRecords.inc({ topic, reason }));
    // Each failed attempt to store a task's result or a job's final state (every one is retried).
    const storeWriteFailures = new Counter({
      name: "distx_store_write_failures_total",
      help: "Failed attempts to write a task result or a job's final state to the state store; each is retried until it succeeds.",
      registers: [registry],
    });
    core.on("store_write_failed", () => storeWriteFailures.inc());
    core.on("update_rejected", (reason: RejectReason) => this.rejectedUpdates.inc({ reason }));
    core.on("watch_dropped", (rpc) => this.watchesDropped.inc({ rpc }));
  }

  /** Every metric name this registry exposes (with histogram series suffixes), for checks. */
  async exposedNames(): Promise<string[]> {
    return metricNamesFromText(await this.registry.metrics());
  }
}

function taskCounts(core: SchedulerCore): Record<TaskStateName, number> {
  const sums = Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskStateName, number>;
  for (const job of core.listJobs(Number.MAX_SAFE_INTEGER)) for (const s of TASK_STATES) sums[s] += job.counts[s];
  return sums;
}

/** Series names in a Prometheus text exposition (histograms give _bucket, _sum, _count). */
export function metricNamesFromText(text: string): string[] {
  const names = new Set<string>();
  for (const line of text.split("\n")) {
    const m = /^# TYPE (\S+) (\w+)/.exec(line);
    if (!m) continue;
    const [, name, type] = m;
    if (type === "histogram") for (const suffix of ["_bucket", "_sum", "_count"]) names.add(name + suffix);
    else if (type === "summary") for (const suffix of ["", "_sum", "_count"]) names.add(name + suffix);
    else names.add(name!);
  }
  return [...names].sort();
}
