// Real-time alerts end to end: a scheduler (in this process, over loopback) with an agent
// process that is SIGKILLed, a job whose tasks time out, and a saturation prediction. Every
// alert must reach a webhook receiver started here, a gRPC WatchAlerts stream, the
// `distx alerts --follow` CLI (a separate process) and the alerts_fired metric.
import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DistributeXClient, type Alert } from "../../../client/index.js";
import { schedulerConfigSchema } from "../../../common/config.js";
import { createLogger } from "../../../common/logger.js";
import { builtKernelsDir } from "../../../common/paths.js";
import { cliEntry } from "../../../cli/local-cluster.js";
import { getExampleKernel } from "../../../kernels/reference/index.js";
import { Scheduler } from "../../../scheduler/scheduler.js";
import { SchedulerMonitoring } from "../../../scheduler/monitoring.js";
import { NodeRegistry } from "../../../scheduler/registry.js";
import type { HardwareProfile } from "../../../common/types.js";
import { eventually } from "../../helpers/monitoring.js";

import type { AlertmanagerWebhookMessage } from "../../../scheduler/alerts/alertmanager.js";

type Received = AlertmanagerWebhookMessage;

let receiver: http.Server;
const received: Received[] = [];
let scheduler: Scheduler;
let client: DistributeXClient;
let cli: ChildProcess;
const cliLines: Alert[] = [];
const streamed: Alert[] = [];
const watchAbort = new AbortController();
let agentProc: ChildProcess | undefined;

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      received.push(JSON.parse(body) as Received);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;

  const config = schedulerConfigSchema.parse({ port: 0, adminPort: 0, alertWebhookUrl: hookUrl, agentTimeoutMs: 1500, heartbeatIntervalMs: 200 });
  scheduler = new Scheduler(config, createLogger("scheduler", "error"));
  const address = await scheduler.start();
  client = new DistributeXClient(address);

  // gRPC watcher in this process.
  void (async () => {
    for await (const a of client.watchAlerts({ includeActive: true, signal: watchAbort.signal })) streamed.push(a);
  })().catch(() => undefined);
  // The CLI, following.
  cli = spawn(process.execPath, [cliEntry(), "alerts", "--follow", "--json", "-s", address], { stdio: ["ignore", "pipe", "pipe"] });
  createInterface({ input: cli.stdout! }).on("line", (l) => cliLines.push(JSON.parse(l) as Alert));
  // Both watchers are subscribed once the bus has three listeners (monitoring's own + two streams).
  await eventually(async () => (scheduler.monitoring.alerts.listenerCount("alert") >= 3 ? true : undefined), 20_000, "watchers to subscribe");
}, 60_000);

afterAll(async () => {
  watchAbort.abort();
  cli?.kill("SIGTERM");
  agentProc?.kill("SIGKILL");
  client?.close();
  await scheduler?.stop(0);
  await new Promise((r) => receiver.close(r));
});

const names = (list: Alert[]) => list.filter((a) => a.state === "firing").map((a) => a.name);
/** The webhook's alerts (Alertmanager's format) read back as our events: alertname/severity labels, alert_id annotation. */
const hookAlerts = (): Alert[] =>
  received.flatMap((r) =>
    r.alerts.map(({ labels: { alertname, severity, ...labels }, status, annotations }) => ({ name: alertname, severity, state: status, labels, alertId: annotations.alert_id, summary: annotations.summary }) as unknown as Alert),
  );

describe("real-time alerts", () => {
  it("an agent killed without draining raises AgentLost everywhere", async () => {
    agentProc = spawn(process.execPath, [cliEntry(), "agent", "--scheduler", client.address, "--no-calibrate", "--workers", "1", "--name", "doomed"], { stdio: "ignore" });
    const node = await eventually(async () => (await client.listNodes()).find((n) => n.state === "NODE_STATE_READY"), 30_000, "agent to register");
    agentProc.kill("SIGKILL");
    await eventually(async () => (hookAlerts().some((a) => a.name === "AgentLost") ? true : undefined), 20_000, "AgentLost at the webhook");
    const hooked = hookAlerts().find((a) => a.name === "AgentLost")!;
    expect(hooked).toMatchObject({ state: "firing", severity: "critical", labels: { node: node.nodeId } });
    expect(received[0]).toMatchObject({ status: "firing" });
    // Alertmanager's webhook message, as a receiver written for Alertmanager expects it.
    const msg = received.find((r) => r.alerts[0]?.labels.alertname === "AgentLost")!;
    expect(msg).toMatchObject({ version: "4", status: "firing", groupLabels: { alertname: "AgentLost" }, commonLabels: { alertname: "AgentLost", severity: "critical", node: node.nodeId } });
    expect(msg.alerts[0]).toMatchObject({ status: "firing", endsAt: "0001-01-01T00:00:00Z", generatorURL: `http://${scheduler.monitoring.adminAddress}/dashboard` });
    expect(Date.parse(msg.alerts[0]!.startsAt)).toBeGreaterThan(Date.now() - 60_000);
    await eventually(async () => (names(streamed).includes("AgentLost") && names(cliLines).includes("AgentLost") ? true : undefined), 10_000, "AgentLost on gRPC and CLI");
    expect(cliLines.find((a) => a.name === "AgentLost")?.labels).toEqual({ node: node.nodeId });
  });

  it("a job whose tasks fail for good raises JobFailing", async () => {
    const agent = spawn(process.execPath, [cliEntry(), "agent", "--scheduler", client.address, "--no-calibrate", "--workers", "1"], { stdio: "ignore" });
    try {
      await eventually(async () => ((await client.listNodes()).some((n) => n.state === "NODE_STATE_READY") ? true : undefined), 30_000, "second agent");
      const { kernelId } = await client.registerKernelFile(path.join(builtKernelsDir(), "montecarlo_pi.wasm"));
      // 1 ms is far too short for 50M samples: TIMEOUT, a deterministic failure, fails the task at once.
      const inputs = getExampleKernel("montecarlo_pi").makeTasks({ tasks: 2, size: 100_000_000 });
      const { job } = await client.run({ kernelId, inputs, timeoutMs: 1, name: "doomed-job" });
      expect(job.state).toBe("JOB_STATE_FAILED");
      await eventually(async () => (hookAlerts().some((a) => a.name === "JobFailing" && a.labels.distx_job === job.jobId) ? true : undefined), 20_000, "JobFailing at the webhook");
      await eventually(async () => (names(streamed).includes("JobFailing") && names(cliLines).includes("JobFailing") ? true : undefined), 10_000, "JobFailing on gRPC and CLI");
      expect(hookAlerts().filter((a) => a.name === "JobFailing")).toHaveLength(1); // once per job, not once per task
    } finally {
      agent.kill("SIGTERM");
    }
  });

  it("the forecaster's saturation prediction raises PredictedSaturation and sets the gauge", async () => {
    scheduler.monitoring.predictedSaturation("node-forecast1", 240, "cpu trend 0.9 → 1.0");
    scheduler.monitoring.predictedSaturation("node-forecast1", 230); // refresh, not a second page
    await eventually(async () => (hookAlerts().some((a) => a.name === "PredictedSaturation") ? true : undefined), 10_000, "PredictedSaturation at the webhook");
    expect(hookAlerts().filter((a) => a.name === "PredictedSaturation")).toHaveLength(1);
    await eventually(async () => (names(streamed).includes("PredictedSaturation") && names(cliLines).includes("PredictedSaturation") ? true : undefined), 10_000, "on gRPC and CLI");
    scheduler.monitoring.clearPredictedSaturation("node-forecast1");
    await eventually(async () => (hookAlerts().some((a) => a.name === "PredictedSaturation" && a.state === "resolved") ? true : undefined), 10_000, "resolution");

    const metrics = await (await fetch(`http://${scheduler.monitoring.adminAddress}/metrics`)).text();
    expect(metrics).toMatch(/^distx_alerts_fired_total\{alertname="AgentLost",severity="critical"\} 1$/m);
    expect(metrics).toMatch(/^distx_alerts_fired_total\{alertname="JobFailing",severity="warning"\} 1$/m);
    expect(metrics).toMatch(/^distx_alerts_fired_total\{alertname="PredictedSaturation",severity="warning"\} 1$/m);
    expect(metrics).toMatch(/^distx_alert_webhook_failures_total 0$/m);
  });

  it("`distx alerts` without --follow lists the active alerts and exits", async () => {
    const out = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const p = spawn(process.execPath, [cliEntry(), "alerts", "-s", client.address], { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      p.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
      p.on("exit", (code) => resolve({ code, stdout }));
    });
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/FIRING\s+critical\s+AgentLost/);
    expect(out.stdout).toMatch(/FIRING\s+warning\s+JobFailing/);
    expect(out.stdout).not.toContain("PredictedSaturation"); // resolved above
  });

  it("a withdrawn prediction resolves on the webhook, gRPC and CLI and leaves the gauges; a later one fires again", async () => {
    const scrape = async () => (await fetch(`http://${scheduler.monitoring.adminAddress}/metrics`)).text();
    const predicted = (at: number, scope: "node" | "cluster") => ({
      ...(scope === "node" ? { scope, nodeId: "node-forecast2" } : { scope }),
      etaMs: 12_000,
      crossingAtMs: at + 12_000,
      horizonMs: 15_000,
      forecast: 0.95,
      threshold: 0.9,
      atMs: at,
    });
    const ofNode = (list: Alert[], state: string) => list.filter((a) => a.name === "PredictedSaturation" && a.labels.node === "node-forecast2" && a.state === state);
    const everywhere = (state: string, count: number) =>
      eventually(
        async () => ([hookAlerts(), streamed, cliLines].every((l) => ofNode(l, state).length === count) ? true : undefined),
        10_000,
        `${count} ${state} PredictedSaturation on the webhook, gRPC and CLI`,
      );

    const firstAt = Date.now();
    scheduler.core.emit("predicted_saturation", predicted(firstAt, "node"));
    await everywhere("firing", 1);
    const crossing = new RegExp(`^distx_node_predicted_saturation_timestamp_seconds\\{node="node-forecast2"\\} ([0-9.e+]+)$`, "m");
    const at = Number(crossing.exec(await scrape())?.[1]);
    expect(at).toBeCloseTo((firstAt + 12_000) / 1000, 3);
    // Seconds to the crossing count down from when it was predicted.
    const left = Number(/^distx_node_predicted_saturation_seconds\{node="node-forecast2"\} ([0-9.e+-]+)$/m.exec(await scrape())?.[1]);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(12 - (Date.now() - firstAt) / 1000 + 0.5);

    scheduler.core.emit("saturation_withdrawn", { scope: "node", nodeId: "node-forecast2", atMs: Date.now() });
    await everywhere("resolved", 1);
    const after = await scrape();
    expect(after).not.toMatch(/^distx_node_predicted_saturation_(timestamp_)?seconds\{node="node-forecast2"\}/m);

    // The same node predicted again: a new firing (a new alert id), not a silent refresh.
    scheduler.core.emit("predicted_saturation", predicted(Date.now(), "node"));
    await everywhere("firing", 2);
    const ids = new Set(ofNode(hookAlerts(), "firing").map((a) => a.alertId));
    expect(ids.size).toBe(2);
    scheduler.core.emit("saturation_withdrawn", { scope: "node", nodeId: "node-forecast2", atMs: Date.now() });
    await everywhere("resolved", 2);

    // The cluster's prediction: its own metric and alert label, not node="cluster"; withdrawn the same way.
    scheduler.core.emit("predicted_saturation", predicted(Date.now(), "cluster"));
    const ofCluster = (state: string) => hookAlerts().filter((a) => a.name === "PredictedSaturation" && a.labels.scope === "cluster" && a.state === state);
    await eventually(async () => (ofCluster("firing").length === 1 ? true : undefined), 10_000, "cluster prediction at the webhook");
    expect(ofCluster("firing")[0]!.labels).toEqual({ scope: "cluster" });
    const withCluster = await scrape();
    expect(withCluster).toMatch(/^distx_cluster_predicted_saturation_timestamp_seconds\{scope="cluster"\} [0-9.e+]+$/m);
    expect(withCluster).not.toContain('node="cluster"');
    scheduler.core.emit("saturation_withdrawn", { scope: "cluster", atMs: Date.now() });
    await eventually(async () => (ofCluster("resolved").length === 1 ? true : undefined), 10_000, "cluster prediction resolved at the webhook");
    expect(await scrape()).not.toMatch(/^distx_cluster_predicted_saturation_timestamp_seconds\{/m);
  });

  it("a standing prediction does not expire while its node's heartbeats sustain it; unsustained, it resolves with its gauge", async () => {
    // A second monitoring on the same core, over a registry of its own, with a 400 ms alert expiry.
    const registry = new NodeRegistry({ agentTimeoutMs: 60_000, prefetchPerWorker: 2 });
    let nodeId = "";
    const monitoring = new SchedulerMonitoring(schedulerConfigSchema.parse({}), scheduler.core, registry, createLogger("monitoring", "error"), { alertTtlMs: 400 });
    try {
      const profile = { hostname: "h", workers: 1, cpu: { model: "x", logicalCores: 1 }, memoryBytes: String(2 ** 33), gpus: [], kernelKinds: ["KERNEL_KIND_WASM"], labels: {} };
      const node = registry.register(profile as unknown as HardwareProfile);
      nodeId = node.id;
      registry.attachSession(node.id, () => {});
      const now = Date.now();
      scheduler.core.emit("predicted_saturation", { scope: "node", nodeId: node.id, etaMs: 5000, crossingAtMs: now + 5000, horizonMs: 15_000, forecast: 0.95, threshold: 0.9, atMs: now });
      const standing = () => monitoring.alerts.activeAlerts().some((a) => a.name === "PredictedSaturation" && a.labels.node === node.id);
      expect(standing()).toBe(true);
      for (let i = 0; i < 15; i++) {
        registry.heartbeat(node.id, { cpuUtilization: 0.95, agentCpuUtilization: 0, memoryUsedBytes: "0", runningTasks: 0, queuedTasks: 0, gpuUtilization: -1, sampledAtMs: Date.now() }, false);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(standing()).toBe(true); // 1.5 s: well past the 400 ms expiry
      expect(monitoring.metrics.predictedCrossings.get(node.id)).toBe(now + 5000);
      await eventually(async () => (standing() ? undefined : true), 3000, "the unsustained prediction to expire");
      expect(monitoring.metrics.predictedCrossings.has(node.id)).toBe(false);
    } finally {
      // The scheduler's own monitoring raised it too: end it there.
      if (nodeId) scheduler.core.emit("saturation_withdrawn", { scope: "node", nodeId, atMs: Date.now() });
      await monitoring.stop();
    }
  });
});
