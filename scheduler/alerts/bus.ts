// The scheduler's real-time alert bus. Alerts are raised by the scheduler itself (an agent
// lost, a job failing) and by the forecaster (predicted saturation); each is logged, counted
// in metrics, kept while active, and fanned out to watchers (gRPC WatchAlerts, the dashboard's
// SSE stream, the webhook). One alert per fingerprint (name + labels) fires at a time: raising
// it again while it is active refreshes it instead of paging twice.
import { EventEmitter } from "node:events";
import { randomUUID } from "node:crypto";
import type { Logger } from "../../common/logger.js";

export type AlertSeverity = "critical" | "warning" | "info";
export type AlertName = "AgentLost" | "JobFailing" | "PredictedSaturation" | "JobUnschedulable";

export interface AlertEvent {
  alertId: string;
  name: AlertName;
  severity: AlertSeverity;
  state: "firing" | "resolved";
  summary: string;
  /** Bounded, identifying labels: node, distx_job (not `job`: Prometheus/Alertmanager own that one), scope. */
  labels: Record<string, string>;
  firedAtMs: number;
  resolvedAtMs: number;
}

export interface AlertBusOptions {
  /** An active alert not raised again for this long resolves by itself. */
  activeTtlMs?: number;
  /** Resolved alerts kept for the dashboard's "recent" list. */
  historySize?: number;
}

const fingerprint = (name: string, labels: Record<string, string>) =>
  name + "{" + Object.keys(labels).sort().map((k) => `${k}=${labels[k]}`).join(",") + "}";

export class AlertBus extends EventEmitter {
  private readonly active = new Map<string, AlertEvent & { refreshedAtMs: number }>();
  private readonly history: AlertEvent[] = [];
  private readonly ttlMs: number;
  private readonly historySize: number;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly log: Logger,
    options: AlertBusOptions = {},
  ) {
    super();
    this.setMaxListeners(0);
    this.ttlMs = options.activeTtlMs ?? 10 * 60_000;
    this.historySize = options.historySize ?? 100;
    this.timer = setInterval(() => this.expire(), Math.min(30_000, Math.max(100, this.ttlMs / 4)));
    this.timer.unref();
  }

  /** Raises an alert; returns it (the existing one when it is already firing). Emits "alert". */
  fire(name: AlertName, severity: AlertSeverity, summary: string, labels: Record<string, string>): AlertEvent {
    const key = fingerprint(name, labels);
    const now = Date.now();
    const existing = this.active.get(key);
    if (existing) {
      existing.refreshedAtMs = now;
      existing.summary = summary;
      return this.publicView(existing);
    }
    const alert = { alertId: `alert-${randomUUID()}`, name, severity, state: "firing" as const, summary, labels: { ...labels }, firedAtMs: now, resolvedAtMs: 0, refreshedAtMs: now };
    this.active.set(key, alert);
    const view = this.publicView(alert);
    this.log.warn({ event: "alert", alert: name, severity, state: "firing", summary, labels }, `alert ${name}: ${summary}`);
    this.emit("alert", view);
    return view;
  }

  /** Keeps an active alert from expiring (a condition that still holds); false when it is not active. */
  refresh(name: AlertName, labels: Record<string, string>): boolean {
    const alert = this.active.get(fingerprint(name, labels));
    if (alert) alert.refreshedAtMs = Date.now();
    return alert !== undefined;
  }

  /** Resolves an active alert, if there is one. */
  resolve(name: AlertName, labels: Record<string, string>): void {
    const key = fingerprint(name, labels);
    const alert = this.active.get(key);
    if (!alert) return;
    this.active.delete(key);
    const resolved: AlertEvent = { ...this.publicView(alert), state: "resolved", resolvedAtMs: Date.now() };
    this.history.push(resolved);
    while (this.history.length > this.historySize) this.history.shift();
    this.log.info({ event: "alert", alert: name, state: "resolved", labels }, `alert ${name} resolved`);
    this.emit("alert", resolved);
  }

  activeAlerts(): AlertEvent[] {
    return [...this.active.values()].map((a) => this.publicView(a)).sort((a, b) => b.firedAtMs - a.firedAtMs);
  }

  recentResolved(): AlertEvent[] {
    return [...this.history].reverse();
  }

  close(): void {
    clearInterval(this.timer);
  }

  private expire(): void {
    const now = Date.now();
    for (const a of [...this.active.values()]) if (now - a.refreshedAtMs > this.ttlMs) this.resolve(a.name, a.labels);
  }

  private publicView(a: AlertEvent & { refreshedAtMs?: number }): AlertEvent {
    const { refreshedAtMs: _r, ...rest } = a;
    return { ...rest, labels: { ...rest.labels } };
  }
}
