// Delivers alert events over HTTP, in Alertmanager's formats (alerts/alertmanager.ts):
//   * "webhook": each event POSTed to the URL as Alertmanager's webhook message (version "4"),
//     so any receiver written for Alertmanager takes it;
//   * "alertmanager": each event POSTed to <url>/api/v2/alerts, as Prometheus does; active alerts
//     are re-posted every `resendMs` (their end lies `4 × resendMs` ahead), so Alertmanager keeps
//     them firing while the scheduler does, routes, groups and silences them.
// Delivery is in order, retried with backoff for about 15 s (a receiver restarting is not a lost
// page; it used to give up after 0.8 s), and never blocks the scheduler: a slow or dead receiver
// costs a log line and a counter.
import type { Logger } from "../../common/logger.js";
import { apiAlert, webhookMessage } from "./alertmanager.js";
import type { AlertEvent } from "./bus.js";

export interface WebhookOptions {
  url: string;
  format?: "webhook" | "alertmanager";
  /** Where the alerts come from, for generatorURL (the scheduler's dashboard). */
  generatorURL?: () => string;
  /** "alertmanager": the active alerts to re-post every resendMs. */
  active?: () => AlertEvent[];
  resendMs?: number;
  attempts?: number;
  timeoutMs?: number;
  /** First retry delay; each next one doubles, up to 8 s. */
  backoffMs?: number;
  /** Events waiting beyond this are dropped (oldest first) rather than growing memory. */
  maxQueue?: number;
  onFailure?: () => void;
}

/** The start of a response's body, for the log: a receiver may answer with an endless one. */
async function leadingText(res: Response, maxBytes = 4096): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let have = 0;
  try {
    while (have < maxBytes) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      have += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).subarray(0, maxBytes).toString("utf8");
}

export class AlertWebhook {
  private readonly queue: AlertEvent[][] = [];
  private sending = false;
  private idleWaiters: (() => void)[] = [];
  private readonly timer?: NodeJS.Timeout;
  private readonly target: string;

  constructor(
    private readonly options: WebhookOptions,
    private readonly log: Logger,
  ) {
    const am = options.format === "alertmanager";
    this.target = am ? options.url.replace(/\/+$/, "") + "/api/v2/alerts" : options.url;
    if (am && options.active) {
      const active = options.active;
      this.timer = setInterval(() => {
        const list = active();
        if (list.length > 0) this.enqueue(list);
      }, this.resendMs);
      this.timer.unref();
    }
  }

  private get resendMs(): number {
    return this.options.resendMs ?? 60_000;
  }

  push(alert: AlertEvent): void {
    this.enqueue([alert]);
  }

  /** Stops re-posting; what is queued is still delivered (see idle()). */
  close(): void {
    clearInterval(this.timer);
  }

  /** Resolves once everything queued has been delivered or given up on. */
  idle(): Promise<void> {
    if (!this.sending && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private enqueue(alerts: AlertEvent[]): void {
    this.queue.push(alerts);
    while (this.queue.length > (this.options.maxQueue ?? 1000)) {
      const dropped = this.queue.shift();
      this.log.warn({ event: "alert_webhook_dropped", alert: dropped?.[0]?.name }, "alert webhook backlog full; dropped the oldest alert");
    }
    void this.drain();
  }

  private async drain(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      for (let batch = this.queue.shift(); batch; batch = this.queue.shift()) await this.deliver(batch);
    } finally {
      this.sending = false;
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  private body(alerts: AlertEvent[]): string {
    const gen = this.options.generatorURL?.() ?? "";
    if (this.options.format === "alertmanager") return JSON.stringify(alerts.map((a) => apiAlert(a, gen, Date.now(), 4 * this.resendMs)));
    return JSON.stringify(webhookMessage(alerts[0]!, gen));
  }

  private async deliver(alerts: AlertEvent[]): Promise<void> {
    const attempts = this.options.attempts ?? 6;
    const body = this.body(alerts);
    let lastError = "";
    for (let i = 1; i <= attempts; i++) {
      try {
        const res = await fetch(this.target, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
          signal: AbortSignal.timeout(this.options.timeoutMs ?? 5000),
        });
        const text = await leadingText(res).catch(() => "");
        if (res.ok) return;
        lastError = `HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ""}`;
        if (res.status >= 400 && res.status < 500 && res.status !== 429) break; // the receiver refuses it; retrying won't help
      } catch (err) {
        lastError = (err as Error).message;
      }
      if (i < attempts) await new Promise((r) => setTimeout(r, Math.min(8000, (this.options.backoffMs ?? 500) * 2 ** (i - 1))));
    }
    this.options.onFailure?.();
    this.log.warn({ event: "alert_webhook_failed", alert: alerts[0]?.name, url: this.target, err: lastError }, "could not deliver an alert to the webhook");
  }
}
