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
import { eventually } from "../../helpers/monitoring.js";

interface Received {
  status: string;
  alerts: Alert[];
}

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
const hookAlerts = () => received.flatMap((r) => r.alerts);

describe("real-time alerts", () => {
  it("an agent killed without draining raises AgentLost everywhere", async () => {
    agentProc = spawn(process.execPath, [cliEntry(), "agent", "--scheduler", client.address, "--no-calibrate", "--workers", "1", "--name", "doomed"], { stdio: "ignore" });
    const node = await eventually(async () => (await client.listNodes()).find((n) => n.state === "NODE_STATE_READY"), 30_000, "agent to register");
    agentProc.kill("SIGKILL");
    await eventually(async () => (hookAlerts().some((a) => a.name === "AgentLost") ? true : undefined), 20_000, "AgentLost at the webhook");
    const hooked = hookAlerts().find((a) => a.name === "AgentLost")!;
    expect(hooked).toMatchObject({ state: "firing", severity: "critical", labels: { node: node.nodeId } });
    expect(received[0]).toMatchObject({ status: "firing" });
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
      await eventually(async () => (hookAlerts().some((a) => a.name === "JobFailing" && a.labels.job === job.jobId) ? true : undefined), 20_000, "JobFailing at the webhook");
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
});
