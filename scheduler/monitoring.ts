// Everything an operator watches on the scheduler, wired together: metrics, the alert bus
// (with its webhook), the admin HTTP server (/metrics, /healthz, /readyz) and the live
// dashboard (/dashboard, /api/state, /api/events, /api/jobs, /api/job, /api/node, and the
// POST /api/nodes/drain action behind an admin token). The forecaster and the result cache report
// here through the small setter API at the bottom.
import type { PredictedSaturation, SaturationWithdrawn } from "./placement/controller.js";
import type http from "node:http";
import { AdminServer, type AdminRoute } from "../common/admin-http.js";
import type { SchedulerConfig } from "../common/config.js";
import type { Logger } from "../common/logger.js";
import type { SchedulerCore } from "./core.js";
import { isTerminalJob, type JobRecord, type TaskRecord } from "./model.js";
import type { NodeEntry, NodeRegistry } from "./registry.js";
import { AlertBus, type AlertEvent } from "./alerts/bus.js";
import { AlertWebhook } from "./alerts/webhook.js";
import { DASHBOARD_HTML } from "./dashboard/page.js";
import { DashboardState } from "./dashboard/state.js";
import { parseJobListQuery } from "./dashboard/views.js";
import { dashboardActionGate, dashboardGate } from "./auth/dashboard-auth.js";
import type { TokenStore } from "./auth/tokens.js";
import { SchedulerMetrics } from "./metrics.js";
import { pooledErrorRatio } from "./forecast/index.js";

/** Alert labels of the cluster-wide prediction: a scope of its own, never mistaken for a node. */
const CLUSTER_LABELS = { scope: "cluster" } as const;

export interface MonitoringOptions {
  /** Dashboard sampling / push interval. */
  dashboardIntervalMs?: number;
  alertTtlMs?: number;
}

export class SchedulerMonitoring {
  readonly metrics: SchedulerMetrics;
  readonly alerts: AlertBus;
  /** --alert-webhook-url (Alertmanager's webhook format) and --alertmanager-url (its /api/v2/alerts). */
  readonly webhooks: AlertWebhook[] = [];
  readonly dashboard: DashboardState;
  private admin?: AdminServer;
  private readonly sseClients = new Set<http.ServerResponse>();

  constructor(
    private readonly config: SchedulerConfig,
    core: SchedulerCore,
    private readonly nodes: NodeRegistry,
    private readonly log: Logger,
    options: MonitoringOptions = {},
  ) {
    this.metrics = new SchedulerMetrics(core, nodes);
    this.alerts = new AlertBus(log, { activeTtlMs: options.alertTtlMs });
    const hook = { onFailure: () => this.metrics.webhookFailures.inc(), generatorURL: () => (this.adminAddress ? `http://${this.adminAddress}/dashboard` : "") };
    if (config.alertWebhookUrl) this.webhooks.push(new AlertWebhook({ ...hook, url: config.alertWebhookUrl }, log));
    if (config.alertmanagerUrl) {
      this.webhooks.push(new AlertWebhook({ ...hook, url: config.alertmanagerUrl, format: "alertmanager", active: () => this.alerts.activeAlerts() }, log));
    }
    this.dashboard = new DashboardState(core, nodes, this.alerts, this.metrics, options.dashboardIntervalMs ?? 1000);

    this.alerts.on("alert", (a: AlertEvent) => {
      if (a.state === "firing") this.metrics.alertsFired.inc({ alertname: a.name, severity: a.severity });
      // However it ended (withdrawn, node down, or expired unrefreshed), the gauges go with it.
      if (a.name === "PredictedSaturation" && a.state === "resolved") {
        if (a.labels.node !== undefined) this.metrics.predictedCrossings.delete(a.labels.node);
        else this.metrics.clusterPredictedCrossing = undefined;
      }
      for (const w of this.webhooks) w.push(a);
      this.broadcast("alerts", this.dashboard.alertGroups.view());
    });

    // Built-in alert sources. An agent that drained first left on purpose: no page for it.
    const drained = new Set<string>();
    nodes.on("draining", (node: NodeEntry) => drained.add(node.id));
    core.on("node_down", (node: NodeEntry) => {
      this.metrics.forecasts.delete(node.id);
      this.clearPredictedSaturation(node.id);
      if (drained.delete(node.id)) return;
      this.alerts.fire("AgentLost", "critical", `agent ${node.profile.hostname} (${node.id}) was lost; its tasks are being re-placed`, { node: node.id });
    });
    core.on("result_cache_hit", (count: number) => this.resultCacheHit(count));
    // The placement forecaster feeds the forecast gauges, its accuracy, and predictive alerts.
    // The controller's clock is wall time, so its crossing is a unix time as it stands.
    core.on("predicted_saturation", (e: PredictedSaturation) => {
      const detail = `forecast utilisation ${e.forecast.toFixed(2)} reaches ${e.threshold} within ${Math.round(e.horizonMs / 1000)} s`;
      if (e.scope === "node" && e.nodeId !== undefined) this.raiseSaturation({ node: e.nodeId }, e.crossingAtMs, detail);
      else if (e.scope === "cluster") this.raiseSaturation(CLUSTER_LABELS, e.crossingAtMs, detail);
    });
    core.on("saturation_withdrawn", (e: SaturationWithdrawn) => {
      if (e.scope === "node" && e.nodeId !== undefined) this.clearPredictedSaturation(e.nodeId);
      else if (e.scope === "cluster") this.clearPredictedClusterSaturation();
    });
    const horizonMs = config.saturationHorizonMs;
    let lastAccuracyAt = 0;
    nodes.on("load", (node: NodeEntry) => {
      // A standing prediction is kept alive by the heartbeats that sustain it: the bus's expiry
      // must not resolve it while the controller still holds it (it withdraws it itself).
      if (this.metrics.predictedCrossings.has(node.id)) this.alerts.refresh("PredictedSaturation", { node: node.id });
      if (this.metrics.clusterPredictedCrossing !== undefined) this.alerts.refresh("PredictedSaturation", CLUSTER_LABELS);
      const f = core.placement.forecastUtilization(node.id, horizonMs);
      if (f !== undefined) this.setNodeForecast(node.id, f, horizonMs / 1000);
      const now = Date.now();
      if (now - lastAccuracyAt < 5000) return;
      lastAccuracyAt = now;
      // Pooled over the nodes' utilisation forecasts (see pooledErrorRatio for why not a mean of ratios).
      const ratio = pooledErrorRatio(core.forecastAccuracy().filter((a) => a.metric === "utilization"));
      if (Number.isFinite(ratio)) this.setForecastErrorRatio(ratio);
    });
    // A job no live node could ever take: say why (the placement checks' own verdict) until a
    // node that fits joins or the job ends. Re-judged when nodes join and every minute (refresh).
    const unschedulable = new Set<string>();
    const judge = (job: JobRecord) => {
      const why = isTerminalJob(job.state) ? "" : core.unschedulableReason(job);
      if (why) {
        unschedulable.add(job.id);
        this.alerts.fire("JobUnschedulable", "warning", `job ${job.name || job.id} cannot be placed: ${why}`.slice(0, 500), { distx_job: job.id });
      } else if (unschedulable.delete(job.id)) this.alerts.resolve("JobUnschedulable", { distx_job: job.id });
    };
    const rejudge = () => {
      for (const id of [...unschedulable]) {
        const job = core.peekJob(id);
        if (job) judge(job);
        else if (unschedulable.delete(id)) this.alerts.resolve("JobUnschedulable", { distx_job: id });
      }
    };
    core.on("job_submitted", judge);
    core.on("job_state", (job: JobRecord) => unschedulable.has(job.id) && judge(job));
    nodes.on("ready", rejudge);
    setInterval(rejudge, 60_000).unref();
    const failing = new Set<string>();
    core.on("task_finished", (job: JobRecord, task: TaskRecord) => {
      if (task.state !== "TASK_STATE_FAILED" || failing.has(job.id)) return;
      failing.add(job.id);
      if (failing.size > 10_000) failing.clear(); // only a guard against unbounded growth; a repeat alert is harmless
      this.alerts.fire("JobFailing", "warning", `job ${job.name || job.id}: task ${task.index} failed (${task.error?.code ?? "ERROR"}: ${task.error?.message ?? ""})`.slice(0, 500), {
        distx_job: job.id,
      });
    });
  }

  /** Set by useAuth when the dashboard needs a token (admin host not on loopback; auth/dashboard-auth.ts). */
  dashboardGate?: (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => Promise<boolean>;
  /** Who may act from the dashboard (drain a node); nobody until useAuth says. */
  private actionGate: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<boolean> = async (_req, res) => {
    res.writeHead(503, { "content-type": "text/plain" }).end("dashboard actions are not configured\n");
    return false;
  };

  /** The scheduler's security: tokens (undefined with --insecure), and whether the admin host is off loopback. */
  useAuth(tokens: TokenStore | undefined, offLoopback: boolean): void {
    if (tokens && offLoopback) this.dashboardGate = dashboardGate(tokens);
    this.actionGate = dashboardActionGate(tokens);
  }

  /** Why /readyz says no (the scheduler's lifecycle, scheduler/lifecycle.ts); set before start(). */
  notReady: () => string | undefined = () => "starting";

  async start(): Promise<string | undefined> {
    this.dashboard.start(() => this.broadcastTick());
    if (this.config.adminPort === undefined) return undefined;
    const gate = this.dashboardGate;
    const guarded =
      (route: AdminRoute): AdminRoute =>
      async (req, res, url) => {
        if (!gate || (await gate(req, res, url))) return route(req, res, url);
      };
    this.admin = new AdminServer({
      host: this.config.adminHost,
      port: this.config.adminPort,
      registry: this.metrics.registry,
      log: this.log,
      notReady: () => this.notReady(),
      routes: {
        "/": (_req, res) => void res.writeHead(302, { location: "/dashboard" }).end(),
        "/dashboard": guarded((_req, res) => void res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" }).end(DASHBOARD_HTML)),
        "/api/state": guarded((_req, res) => void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(this.dashboard.snapshot(true)))),
        "/api/events": guarded((req, res) => this.openSse(req, res)),
        "/api/jobs": guarded((_req, res, url) => json(res, 200, this.dashboard.jobs(parseJobListQuery(url)))),
        "/api/job": guarded((_req, res, url) => found(res, this.dashboard.job(url.searchParams.get("id") ?? ""))),
        "/api/node": guarded((_req, res, url) => found(res, this.dashboard.node(url.searchParams.get("id") ?? ""))),
      },
      postRoutes: {
        "/api/nodes/drain": async (req, res, url) => {
          if (!(await this.actionGate(req, res))) return;
          const id = url.searchParams.get("node") ?? "";
          if (!this.nodes.drain(id)) return json(res, 404, { error: `no live node ${JSON.stringify(id.slice(0, 80))}` });
          this.log.info({ event: "node_drain_requested", nodeId: id, via: "dashboard" }, "node drain requested from the dashboard");
          json(res, 200, { nodeId: id, state: "draining" });
        },
      },
    });
    return this.admin.start();
  }

  get adminAddress(): string {
    return this.admin?.address ?? "";
  }

  async stop(): Promise<void> {
    this.dashboard.stop();
    this.alerts.close();
    for (const res of this.sseClients) res.end();
    this.sseClients.clear();
    for (const w of this.webhooks) w.close();
    await Promise.all(this.webhooks.map((w) => w.idle()));
    await this.admin?.stop();
  }

  // ───────────── for the forecaster and the result cache ─────────────

  /** Forecast CPU utilisation of a node over the next `horizonSeconds`, shown clamped to 0..1; drawn against the load. */
  setNodeForecast(nodeId: string, cpuUtilization: number, horizonSeconds: number): void {
    if (!Number.isFinite(cpuUtilization)) return;
    this.metrics.forecasts.set(nodeId, { cpuUtilization: Math.min(1, Math.max(0, cpuUtilization)), horizonSeconds, atMs: Date.now() });
  }

  /** Forecaster error divided by the naive forecast's error (< 1 means it beats naive). */
  setForecastErrorRatio(ratio: number): void {
    this.metrics.forecastErrorRatio.set(ratio);
  }

  /**
   * The forecaster predicts that `nodeId` saturates in `inSeconds`: exported as
   * distx_node_predicted_saturation_timestamp_seconds{node} (and _seconds, counting down) and
   * raised as a PredictedSaturation alert {node}. Call clearPredictedSaturation when the
   * prediction no longer holds; predicting it again after that is a new alert.
   */
  predictedSaturation(nodeId: string, inSeconds: number, detail = ""): AlertEvent {
    return this.raiseSaturation({ node: nodeId }, Date.now() + Math.max(0, inSeconds) * 1000, detail);
  }

  clearPredictedSaturation(nodeId: string): void {
    this.metrics.predictedCrossings.delete(nodeId);
    this.alerts.resolve("PredictedSaturation", { node: nodeId });
  }

  /** The same for the whole cluster: distx_cluster_predicted_saturation_timestamp_seconds, alert {scope="cluster"}. */
  predictedClusterSaturation(inSeconds: number, detail = ""): AlertEvent {
    return this.raiseSaturation(CLUSTER_LABELS, Date.now() + Math.max(0, inSeconds) * 1000, detail);
  }

  clearPredictedClusterSaturation(): void {
    this.metrics.clusterPredictedCrossing = undefined;
    this.alerts.resolve("PredictedSaturation", CLUSTER_LABELS);
  }

  private raiseSaturation(labels: { node: string } | typeof CLUSTER_LABELS, crossingAtMs: number, detail: string): AlertEvent {
    if ("node" in labels) this.metrics.predictedCrossings.set(labels.node, crossingAtMs);
    else this.metrics.clusterPredictedCrossing = crossingAtMs;
    const who = "node" in labels ? `node ${labels.node}` : "the cluster";
    const inSeconds = Math.max(0, Math.round((crossingAtMs - Date.now()) / 1000));
    const summary = `${who} is predicted to saturate in ${inSeconds} s${detail ? `: ${detail}` : ""}`;
    return this.alerts.fire("PredictedSaturation", "warning", summary, { ...labels });
  }

  resultCacheHit(count = 1): void {
    this.metrics.resultCacheHits.inc(count);
  }

  // ───────────── live dashboard stream ─────────────

  private openSse(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
    res.write(`retry: 2000\n\n`);
    this.sseClients.add(res);
    const close = () => this.sseClients.delete(res);
    req.on("close", close);
    res.on("error", close);
    this.send(res, "snapshot", this.dashboard.snapshot(true));
  }

  private send(res: http.ServerResponse, event: string, data: unknown): void {
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  private broadcast(event: string, data: unknown): void {
    if (this.sseClients.size === 0) return;
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of this.sseClients) {
      // A client that cannot keep up is dropped rather than buffered without bound; it reconnects.
      if (res.writableLength > 8 * 1024 * 1024) {
        res.destroy();
        this.sseClients.delete(res);
        continue;
      }
      res.write(frame);
    }
  }

  private broadcastTick(): void {
    if (this.sseClients.size > 0) this.broadcast("tick", this.dashboard.snapshot(false));
  }
}

const json = (res: http.ServerResponse, status: number, body: unknown) =>
  void res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify(body));
const found = (res: http.ServerResponse, body: unknown) => (body === undefined ? json(res, 404, { error: "not found" }) : json(res, 200, body));
