// Delivers alert events to an HTTP webhook as JSON POSTs, Alertmanager-webhook-like:
// {version, status, alerts:[...]}. Delivery is in order, retried with backoff, and never
// blocks the scheduler: a slow or dead receiver only costs a log line and a counter.
import type { Logger } from "../../common/logger.js";
import type { AlertEvent } from "./bus.js";

export interface WebhookOptions {
  url: string;
  attempts?: number;
  timeoutMs?: number;
  /** Events waiting beyond this are dropped (oldest first) rather than growing memory. */
  maxQueue?: number;
  onFailure?: () => void;
}

export class AlertWebhook {
  private readonly queue: AlertEvent[] = [];
  private sending = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly options: WebhookOptions,
    private readonly log: Logger,
  ) {}

  push(alert: AlertEvent): void {
    this.queue.push(alert);
    while (this.queue.length > (this.options.maxQueue ?? 1000)) {
      const dropped = this.queue.shift();
      this.log.warn({ event: "alert_webhook_dropped", alert: dropped?.name }, "alert webhook backlog full; dropped the oldest alert");
    }
    void this.drain();
  }

  /** Resolves once everything queued has been delivered or given up on. */
  idle(): Promise<void> {
    if (!this.sending && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private async drain(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      for (let alert = this.queue.shift(); alert; alert = this.queue.shift()) await this.deliver(alert);
    } finally {
      this.sending = false;
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  private async deliver(alert: AlertEvent): Promise<void> {
    const attempts = this.options.attempts ?? 3;
    const body = JSON.stringify({ version: "distx-1", status: alert.state, alerts: [alert] });
    let lastError = "";
    for (let i = 1; i <= attempts; i++) {
      try {
        const res = await fetch(this.options.url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
          signal: AbortSignal.timeout(this.options.timeoutMs ?? 5000),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return;
        lastError = `HTTP ${res.status}`;
        if (res.status >= 400 && res.status < 500 && res.status !== 429) break; // the receiver refuses it; retrying won't help
      } catch (err) {
        lastError = (err as Error).message;
      }
      if (i < attempts) await new Promise((r) => setTimeout(r, 250 * 2 ** (i - 1)));
    }
    this.options.onFailure?.();
    this.log.warn({ event: "alert_webhook_failed", alert: alert.name, url: this.options.url, err: lastError }, "could not deliver an alert to the webhook");
  }
}
