// The scheduler's live web dashboard in headless Chromium (Debian's chromium, driven by
// playwright-core): it renders the nodes of a real local cluster and a running job, and
// updates when the job finishes without a reload. A second check feeds it 200 nodes.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser } from "playwright-core";
import { DistributeXClient } from "../../../client/index.js";
import { schedulerConfigSchema } from "../../../common/config.js";
import { createLogger } from "../../../common/logger.js";
import { builtKernelsDir } from "../../../common/paths.js";
import { LocalCluster } from "../../../cli/local-cluster.js";
import { getExampleKernel } from "../../../kernels/reference/index.js";
import { Scheduler } from "../../../scheduler/scheduler.js";
import { launchChromium, testOutputDir } from "../../helpers/monitoring.js";

let browser: Browser;

beforeAll(async () => {
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
});

describe("live dashboard", () => {
  it("shows the cluster's nodes and a running job, and updates live when it finishes", async () => {
    const cluster = new LocalCluster({ agents: 2, workersPerAgent: 1, logs: testOutputDir("dashboard-cluster-logs"), agentArgs: () => ["--no-calibrate"] });
    const client = new DistributeXClient(await cluster.start());
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    try {
      const admin = await cluster.adminAddress("scheduler");
      await page.goto(`http://${admin}/dashboard`);
      await page.waitForSelector("#conn.ok", { timeout: 15_000 });
      const nodes = await client.listNodes();
      for (const n of nodes) {
        const card = page.locator(`.node[data-node="${n.nodeId}"]`);
        await card.waitFor({ timeout: 10_000 });
        const text = await card.innerText();
        expect(text).toContain(n.profile!.hostname);
        expect(text).toContain(`${n.profile!.cpu!.logicalCores} cores`);
        expect(text).toMatch(/CPU \d+%/);
      }
      expect(await page.locator(".node").count()).toBe(2);
      // A mark on the window survives only if the page is never reloaded.
      await page.evaluate(() => ((window as unknown as { __mark: number }).__mark = 42));

      const { kernelId } = await client.registerKernelFile(path.join(builtKernelsDir(), "montecarlo_pi.wasm"));
      // Long enough (about 5 s) to be seen running by a page that renders late: with 6e8 samples
      // one CI run finished the job in 1.0 s, before its busy Chromium ever showed it running.
      const inputs = getExampleKernel("montecarlo_pi").makeTasks({ tasks: 6, size: 3_000_000_000 });
      const { jobId } = await client.submitJob({ kernelId, inputs, name: "dashboard-job" });
      const row = page.locator(`tr[data-job="${jobId}"]`);
      await page.waitForSelector(`tr[data-job="${jobId}"][data-state="running"]`, { timeout: 15_000 });
      expect(await row.innerText()).toContain("dashboard-job");
      await page.screenshot({ path: testOutputDir("dashboard-running.png"), fullPage: true });

      const job = await client.waitForJob(jobId);
      expect(job.state).toBe("JOB_STATE_SUCCEEDED");
      await page.waitForSelector(`tr[data-job="${jobId}"][data-state="succeeded"]`, { timeout: 10_000 });
      expect(await row.innerText()).toContain("6/6");
      expect(await page.evaluate(() => (window as unknown as { __mark?: number }).__mark)).toBe(42);
      expect(await page.locator("#k-done").innerText()).toBe("6");
      await page.screenshot({ path: testOutputDir("dashboard-finished.png"), fullPage: true });
    } finally {
      await page.close();
      client.close();
      await cluster.stop();
    }
  }, 120_000);

  it("holds up with 200 nodes: all rendered, live ticks render in well under a second", async () => {
    const scheduler = new Scheduler(schedulerConfigSchema.parse({ port: 0, adminPort: 0, agentTimeoutMs: 600_000 }), createLogger("test", "error"));
    await scheduler.start();
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    const timer = setInterval(() => heartbeatAll(), 500);
    const ids: string[] = [];
    // 200 nodes registered through the real registry (what 200 agents' Register + Session do),
    // with heartbeats that move their load, and a forecast for each.
    for (let i = 0; i < 200; i++) {
      const node = scheduler.registry.register({
        hostname: `host-${String(i).padStart(3, "0")}`, platform: "linux", arch: "x64",
        cpu: { vendor: "x", model: "Test CPU", physicalCores: 8, logicalCores: 16, baseGhz: 3, simd: ["avx2"] },
        memoryBytes: String(64 * 2 ** 30), gpus: i % 10 === 0 ? [{ vendor: "nvidia", model: "Test GPU", memoryBytes: "0", memoryUsedBytes: "0", utilization: -1 }] : [],
        calibration: null, workers: 16, labels: { zone: i % 2 ? "a" : "b" }, kernelKinds: ["KERNEL_KIND_WASM"],
        gpuBackend: "cpu", gpuRenderer: "", gpuCalibration: null, gpuExecutors: 0, niced: false,
      });
      scheduler.registry.attachSession(node.id, () => undefined);
      ids.push(node.id);
    }
    let t = 0;
    function heartbeatAll() {
      t++;
      ids.forEach((id, i) => {
        const cpu = 0.5 + 0.4 * Math.sin((t + i) / 5);
        scheduler.registry.heartbeat(id, { cpuUtilization: cpu, memoryUsedBytes: String(2 ** 33), runningTasks: i % 16, queuedTasks: 0, gpuUtilization: -1, sampledAtMs: Date.now(), agentCpuUtilization: cpu }, false);
        scheduler.monitoring.setNodeForecast(id, Math.min(1, cpu + 0.05), 60);
      });
    }
    heartbeatAll();
    try {
      await page.goto(`http://${scheduler.monitoring.adminAddress}/dashboard`);
      await page.waitForSelector("#conn.ok", { timeout: 15_000 });
      await page.waitForFunction(() => document.querySelectorAll(".node").length === 200, undefined, { timeout: 15_000 });
      const start = await page.evaluate(() => (window as unknown as { __distxTicks: number }).__distxTicks);
      await page.waitForFunction((s) => (window as unknown as { __distxTicks: number }).__distxTicks >= s + 3, start, { timeout: 15_000 });
      const renderMs = await page.evaluate(() => (window as unknown as { __distxRenderMs: number }).__distxRenderMs);
      expect(renderMs).toBeLessThan(250);
      // Sparklines carry both series: load and forecast.
      const pts = await page.locator(`.node[data-node="${ids[0]}"] polyline.load`).getAttribute("points");
      expect(pts?.trim().split(" ").length).toBeGreaterThanOrEqual(2);
      expect(await page.locator(`.node[data-node="${ids[0]}"] polyline.fc`).getAttribute("points")).not.toBe("");
      expect(await page.locator("#k-nodes").innerText()).toBe("200");
      await page.screenshot({ path: testOutputDir("dashboard-200-nodes.png") });
    } finally {
      clearInterval(timer);
      await page.close();
      await scheduler.stop(0);
    }
  }, 90_000);
});
