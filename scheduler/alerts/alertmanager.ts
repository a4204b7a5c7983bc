// Alertmanager's formats for our alert events, so a receiver written for Alertmanager's webhook
// (or Alertmanager itself) takes them as they are:
//   * webhookMessage: the body Alertmanager POSTs to a webhook receiver (version "4");
//   * apiAlert: one element of the array Prometheus POSTs to Alertmanager's /api/v2/alerts.
// Labels are the alert's own (node, distx_job, scope) plus alertname and severity; the summary
// and our alert id travel as annotations.
import { createHash } from "node:crypto";
import type { AlertEvent } from "./bus.js";

/** Alertmanager's "no end yet". */
const ZERO_TIME = "0001-01-01T00:00:00Z";

export interface AlertmanagerAlert {
  status: "firing" | "resolved";
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
  fingerprint: string;
}

export interface AlertmanagerWebhookMessage {
  version: "4";
  groupKey: string;
  truncatedAlerts: number;
  status: "firing" | "resolved";
  receiver: string;
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  externalURL: string;
  alerts: AlertmanagerAlert[];
}

export function alertLabels(a: AlertEvent): Record<string, string> {
  return { ...a.labels, alertname: a.name, severity: a.severity };
}

const labelKey = (labels: Record<string, string>) =>
  "{" + Object.keys(labels).sort().map((k) => `${k}=${JSON.stringify(labels[k])}`).join(",") + "}";

export function toAlertmanagerAlert(a: AlertEvent, generatorURL: string): AlertmanagerAlert {
  const labels = alertLabels(a);
  return {
    status: a.state,
    labels,
    annotations: { summary: a.summary, alert_id: a.alertId },
    startsAt: new Date(a.firedAtMs).toISOString(),
    endsAt: a.state === "resolved" ? new Date(a.resolvedAtMs).toISOString() : ZERO_TIME,
    generatorURL,
    fingerprint: createHash("sha256").update(labelKey(labels)).digest("hex").slice(0, 16),
  };
}

/** One event as Alertmanager's webhook message (a group of one, keyed by the alert's labels). */
export function webhookMessage(a: AlertEvent, generatorURL: string): AlertmanagerWebhookMessage {
  const alert = toAlertmanagerAlert(a, generatorURL);
  return {
    version: "4",
    groupKey: labelKey(alert.labels),
    truncatedAlerts: 0,
    status: a.state,
    receiver: "distributex",
    groupLabels: { alertname: a.name },
    commonLabels: alert.labels,
    commonAnnotations: alert.annotations,
    externalURL: generatorURL,
    alerts: [alert],
  };
}

/**
 * One event for Alertmanager's POST /api/v2/alerts. A firing alert carries an end `validForMs`
 * ahead (as Prometheus does): the sender re-posts active alerts well before it, so Alertmanager
 * keeps them firing while the scheduler does and lets them lapse if the scheduler dies.
 */
export function apiAlert(a: AlertEvent, generatorURL: string, nowMs: number, validForMs: number): Omit<AlertmanagerAlert, "status" | "fingerprint"> {
  const { status: _s, fingerprint: _f, ...rest } = toAlertmanagerAlert(a, generatorURL);
  return { ...rest, endsAt: a.state === "resolved" ? rest.endsAt : new Date(nowMs + validForMs).toISOString() };
}
