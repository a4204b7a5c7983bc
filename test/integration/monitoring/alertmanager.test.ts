// The scheduler's alerts in a real Alertmanager (Debian's prometheus-alertmanager): with
// --alertmanager-url they are posted to its /api/v2/alerts, show there with our labels, are
// routed to a receiver, and resolve there. The message Alertmanager then sends its webhook
// receiver is the reference for our own --alert-webhook-url body: same fields, same labels.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { schedulerConfigSchema } from "../../../common/config.js";
import { createLogger } from "../../../common/logger.js";
import type { AlertmanagerWebhookMessage } from "../../../scheduler/alerts/alertmanager.js";
import { Scheduler } from "../../../scheduler/scheduler.js";
import { AlertWebhook } from "../../../scheduler/alerts/webhook.js";
import { eventually, startAlertmanager, type RunningPrometheus } from "../../helpers/monitoring.js";

/** A webhook receiver: what it got, by path. */
function receiver(): Promise<{ server: http.Server; url: string; got: Map<string, AlertmanagerWebhookMessage[]> }> {
  const got = new Map<string, AlertmanagerWebhookMessage[]>();
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      const list = got.get(req.url ?? "") ?? [];
      list.push(JSON.parse(body) as AlertmanagerWebhookMessage);
      got.set(req.url ?? "", list);
      res.writeHead(200).end();
    });
  });
  return new Promise((r) => server.listen(0, "127.0.0.1", () => r({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, got })));
}

let am: RunningPrometheus;
let rx: Awaited<ReturnType<typeof receiver>>;
let scheduler: Scheduler;

beforeAll(async () => {
  rx = await receiver();
  am = await startAlertmanager(
    [
      "route:",
      "  receiver: hook",
      "  group_by: [alertname, node, distx_job]",
      "  group_wait: 0s",
      "  group_interval: 1s",
      "  repeat_interval: 1h",
      "receivers:",
      "  - name: hook",
      "    webhook_configs:",
      `      - url: ${rx.url}/from-alertmanager`,
      "        send_resolved: true",
      "",
    ].join("\n"),
  );
  const config = schedulerConfigSchema.parse({ port: 0, adminPort: 0, alertmanagerUrl: am.url, alertWebhookUrl: `${rx.url}/from-distx` });
  scheduler = new Scheduler(config, createLogger("scheduler", "error"));
  await scheduler.start();
}, 60_000);

afterAll(async () => {
  await scheduler?.stop(0);
  await am?.stop();
  await new Promise((r) => rx?.server.close(r));
});

interface AmApiAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  status: { state: string };
}
const amAlerts = async (): Promise<AmApiAlert[]> => (await (await fetch(`${am.url}/api/v2/alerts`)).json()) as AmApiAlert[];

describe("alerts in a real Alertmanager", () => {
  it("fire there with our labels, reach its receiver, and resolve; our webhook body matches Alertmanager's own", async () => {
    const bus = scheduler.monitoring.alerts;
    bus.fire("JobFailing", "warning", "job j-1: task 0 failed", { distx_job: "j-1" });
    const shown = await eventually(async () => (await amAlerts()).find((a) => a.labels.alertname === "JobFailing"), 15_000, "the alert in Alertmanager");
    expect(shown.labels).toEqual({ alertname: "JobFailing", severity: "warning", distx_job: "j-1" });
    expect(shown.annotations.summary).toBe("job j-1: task 0 failed");
    expect(shown.status.state).toBe("active");
    // Alertmanager routed it to its webhook receiver.
    const routed = await eventually(async () => rx.got.get("/from-alertmanager")?.find((m) => m.status === "firing"), 15_000, "Alertmanager's notification");
    // Our own webhook is a separate sender: its message may arrive after Alertmanager's.
    const ours = await eventually(async () => rx.got.get("/from-distx")?.find((m) => m.status === "firing"), 15_000, "our webhook's firing message");
    expect(ours).toBeDefined();
    // Same message shape (every field Alertmanager sends, no field it lacks) and the same alert labels.
    expect(Object.keys(ours!).sort()).toEqual(Object.keys(routed).sort());
    expect(Object.keys(ours!.alerts[0]!).sort()).toEqual(Object.keys(routed.alerts[0]!).sort());
    expect(ours!.version).toBe(routed.version);
    expect(ours!.alerts[0]!.labels).toEqual(routed.alerts[0]!.labels);
    expect(ours!.commonLabels).toEqual(routed.commonLabels);
    expect(Date.parse(ours!.alerts[0]!.startsAt)).toBe(Date.parse(routed.alerts[0]!.startsAt));

    bus.resolve("JobFailing", { distx_job: "j-1" });
    await eventually(async () => ((await amAlerts()).some((a) => a.labels.alertname === "JobFailing") ? undefined : true), 15_000, "the alert gone from Alertmanager's active list");
    const resolved = await eventually(async () => rx.got.get("/from-alertmanager")?.find((m) => m.status === "resolved"), 15_000, "Alertmanager's resolved notification");
    expect(resolved.alerts[0]!.labels).toEqual(shown.labels);
    const oursResolved = await eventually(async () => rx.got.get("/from-distx")?.find((m) => m.status === "resolved"), 15_000, "our webhook's resolved message");
    expect(oursResolved?.alerts[0]).toMatchObject({ status: "resolved", labels: shown.labels });
    expect(Date.parse(oursResolved!.alerts[0]!.endsAt)).toBeGreaterThanOrEqual(Date.parse(oursResolved!.alerts[0]!.startsAt));
    expect(await scheduler.monitoring.metrics.registry.getSingleMetricAsString("distx_alert_webhook_failures_total")).toMatch(/ 0$/m);
  }, 60_000);

  it("a receiver that refuses for a few seconds (restarting) still gets the alert, in order", async () => {
    let refusals = 0;
    const got: AlertmanagerWebhookMessage[] = [];
    const server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        // Three refusals: about 3.5 s of backoff (0.5 + 1 + 2); the old sender gave up after 0.75 s.
        if (refusals++ < 3) return void res.writeHead(503).end();
        got.push(JSON.parse(body) as AlertmanagerWebhookMessage);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    let failures = 0;
    const hook = new AlertWebhook({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, onFailure: () => failures++ }, createLogger("test", "error"));
    const bus = scheduler.monitoring.alerts;
    const listener = (a: Parameters<AlertWebhook["push"]>[0]) => hook.push(a);
    bus.on("alert", listener);
    try {
      bus.fire("JobFailing", "warning", "job j-2 failed", { distx_job: "j-2" });
      bus.resolve("JobFailing", { distx_job: "j-2" });
      await hook.idle();
      expect(failures).toBe(0);
      expect(got.map((m) => m.status)).toEqual(["firing", "resolved"]);
    } finally {
      bus.off("alert", listener);
      hook.close();
      await new Promise((r) => server.close(r));
    }
  }, 30_000);

  it("a receiver that never answers, or answers with an endless body, costs a bounded wait and bounded memory; the next alert still gets through", async () => {
    let mode: "hang" | "flood" | "ok" = "hang";
    let flooded = 0;
    const got: AlertmanagerWebhookMessage[] = [];
    const server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        if (mode === "hang") return; // accepts, reads the request, never answers
        if (mode === "flood") {
          res.writeHead(500, { "content-type": "text/plain" });
          const chunk = Buffer.alloc(1 << 20, 0x61);
          const pump = (): void => {
            while (!res.destroyed) {
              flooded += chunk.length;
              if (!res.write(chunk)) return void res.once("drain", pump);
            }
          };
          pump();
          return;
        }
        got.push(JSON.parse(body) as AlertmanagerWebhookMessage);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    let failures = 0;
    const hook = new AlertWebhook({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, attempts: 2, timeoutMs: 400, backoffMs: 50, onFailure: () => failures++ }, createLogger("test", "error"));
    try {
      const alert = (id: string): Parameters<AlertWebhook["push"]>[0] => ({ alertId: id, name: "JobFailing", severity: "warning", state: "firing", summary: id, labels: { distx_job: id }, firedAtMs: Date.now(), resolvedAtMs: 0 });
      let t0 = Date.now();
      hook.push(alert("j-hang"));
      await hook.idle();
      expect(failures).toBe(1);
      expect(Date.now() - t0).toBeLessThan(5000); // two attempts of 400 ms, not a wait for ever

      mode = "flood";
      t0 = Date.now();
      hook.push(alert("j-flood"));
      await hook.idle();
      expect(failures).toBe(2);
      expect(Date.now() - t0).toBeLessThan(5000);
      // The sender reads the start of an error body and hangs up: the receiver could not push more
      // than socket buffers hold (8 MiB here; the sender that read it all took 100 MB in two 400 ms attempts under load).
      expect(flooded).toBeLessThan(64 << 20);

      mode = "ok";
      hook.push(alert("j-after"));
      await hook.idle();
      expect(failures).toBe(2);
      expect(got.map((m) => m.commonLabels.distx_job)).toEqual(["j-after"]);
    } finally {
      hook.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  }, 30_000);
});
