// The dashboard for operators, in headless Chromium against a real local cluster (separate
// processes, TLS, tokens): readable node cards at 1280 px, the job table with its filters, a
// job's page with a failing task's code, a node's page, and the drain action (an admin token
// drains, a read token is refused). A second case, on an in-process scheduler, checks that the
// alert list stays bounded and grouped and that HTML in names and messages is shown as text.
// Screenshots (1280x800) are written beside this file, in screenshots/.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, Page } from "playwright-core";
import { schedulerConfigSchema } from "../../../common/config.js";
import { createLogger } from "../../../common/logger.js";
import { builtKernelsDir } from "../../../common/paths.js";
import { getExampleKernel } from "../../../kernels/reference/index.js";
import { tokenId } from "../../../scheduler/auth/tokens.js";
import { Scheduler } from "../../../scheduler/scheduler.js";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";
import { fixtureKernel } from "../../helpers/fixtures.js";
import { launchChromium, testOutputDir } from "../../helpers/monitoring.js";
import { until } from "../../helpers/poll.js";

// Screenshots go to test-output/ on every run; DISTX_UPDATE_SCREENSHOTS=1 writes the committed ones
// beside this file instead (so a plain test run leaves the checkout clean).
const shot = (name: string) =>
  process.env.DISTX_UPDATE_SCREENSHOTS === "1" ? path.join(path.dirname(fileURLToPath(import.meta.url)), "screenshots", name) : testOutputDir(`dashboard-${name}`);
const VIEWPORT = { width: 1280, height: 800 };
const HOSTILE = `<img src=x onerror="window.__pwned=1">`;
let browser: Browser;

beforeAll(async () => {
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
});

/** The element's text is all visible: nothing cut (no horizontal overflow) and not empty. */
async function fullyVisible(page: Page, selector: string): Promise<{ text: string; scroll: number; client: number }> {
  return page.locator(selector).evaluate((e) => ({ text: e.textContent ?? "", scroll: e.scrollWidth, client: e.clientWidth }));
}

const pwned = (page: Page) => page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned);

describe("dashboard for operators", () => {
  let t: TestCluster;
  beforeAll(async () => {
    t = await startTestCluster("dashboard-operator", { logs: testOutputDir("dashboard-operator-logs"), agentArgs: () => ["--no-calibrate"] });
  }, 120_000);
  afterAll(async () => {
    await t?.stop();
  });

  it("node cards, job table and filters, a job page with a failure's code, a node page, drain by admin only", async () => {
    const admin = await t.cluster.adminAddress("scheduler");
    const page = await browser.newPage({ viewport: VIEWPORT });
    page.on("dialog", (d) => void d.accept());
    try {
      await page.goto(`http://${admin}/dashboard`);
      await page.waitForSelector("#conn.ok", { timeout: 15_000 });
      const nodes = await t.client.listNodes();
      expect(nodes.length).toBe(2);
      for (const n of nodes) {
        const card = `.node[data-node="${n.nodeId}"]`;
        await page.locator(card).waitFor({ timeout: 10_000 });
        // The full host name and node id are shown, not cut: no overflow at 1280 px.
        for (const [sel, want] of [[`${card} .h`, n.profile!.hostname], [`${card} .id`, n.nodeId]] as const) {
          const v = await fullyVisible(page, sel);
          expect(v.text).toBe(want);
          expect(v.scroll).toBeLessThanOrEqual(v.client);
        }
        expect(await page.locator(card).innerText()).toMatch(/CPU \d+%/);
      }

      // Two jobs: one that succeeds, one whose kernel traps with HTML in its message, named with HTML.
      const { kernelId: piId } = await t.client.registerKernelFile(path.join(builtKernelsDir(), "montecarlo_pi.wasm"));
      const ok = await t.client.submitJob({ kernelId: piId, inputs: getExampleKernel("montecarlo_pi").makeTasks({ tasks: 4, size: 2_000_000 }), name: "op-ok" });
      const trapId = (await t.client.registerKernel(await fixtureKernel("trap_html"), { name: "trap_html" })).kernelId;
      const bad = await t.client.submitJob({ kernelId: trapId, inputs: [Buffer.alloc(4), Buffer.alloc(4), Buffer.alloc(4)], name: "<b>op-bad</b>" });
      expect((await t.client.waitForJob(ok.jobId)).state).toBe("JOB_STATE_SUCCEEDED");
      expect((await t.client.waitForJob(bad.jobId)).state).toBe("JOB_STATE_FAILED");

      // The job table: id, submitter (tenant and token id), age, duration, state.
      const okRow = page.locator(`tr[data-job="${ok.jobId}"][data-state="succeeded"]`);
      await okRow.waitFor({ timeout: 10_000 });
      const rowText = await okRow.innerText();
      expect(rowText).toContain("op-ok");
      expect(rowText).toContain(ok.jobId);
      expect(rowText).toContain(tokenId(t.adminToken)!);
      expect(rowText).toMatch(/\d+ (ms|s)/);
      expect(rowText).toContain("4/4");
      await page.screenshot({ path: shot("overview.png") });

      // State filters: "failed" shows the failing job only, "succeeded" the other.
      await page.click('button[data-filter="failed"]');
      await page.waitForSelector(`tr[data-job="${ok.jobId}"]`, { state: "detached" });
      expect(await page.locator(`tr[data-job="${bad.jobId}"]`).count()).toBe(1);
      expect(await page.locator('button[data-filter="failed"] .count').innerText()).toBe("1");
      await page.screenshot({ path: shot("jobs-filter-failed.png") });
      await page.click('button[data-filter="succeeded"]');
      await page.waitForSelector(`tr[data-job="${bad.jobId}"]`, { state: "detached" });
      expect(await page.locator(`tr[data-job="${ok.jobId}"]`).count()).toBe(1);
      // The text filter (by id prefix) and back to all.
      await page.click('button[data-filter=""]');
      await page.fill("#job-search", bad.jobId.slice(0, 13));
      await page.waitForSelector(`tr[data-job="${ok.jobId}"]`, { state: "detached" });
      expect(await page.locator("#jobs tr").count()).toBe(1);
      await page.fill("#job-search", "");

      // The failing job's page: counts by state, the failure with its code and message (as text), placement, histogram.
      await page.click(`tr[data-job="${bad.jobId}"] a`);
      await page.waitForSelector("#view-job tr[data-task]", { timeout: 10_000 });
      expect(await page.locator("#job-name").innerText()).toBe("<b>op-bad</b>");
      expect(await page.locator("#view-overview").isVisible()).toBe(false);
      expect(await page.locator('#job-counts [data-state="failed"]').innerText()).toBe("failed 3");
      const failure = page.locator("#view-job tr[data-task]").first();
      expect(await failure.locator(".code").innerText()).toBe("TRAP");
      expect(await failure.innerText()).toContain(HOSTILE);
      expect(await page.locator("#view-job img, #view-job b:not(h2 b)").count()).toBe(0);
      expect(await page.locator("#job-placement tr[data-node]").count()).toBeGreaterThanOrEqual(1);
      expect(await pwned(page)).toBeUndefined();
      await page.screenshot({ path: shot("job-failed.png") });
      await page.goto(`http://${admin}/dashboard#/job/${ok.jobId}`);
      await page.waitForSelector('#job-counts [data-state="succeeded"]', { timeout: 10_000 });
      expect(await page.locator('#job-counts [data-state="succeeded"]').innerText()).toBe("succeeded 4");
      expect(await page.locator("#view-job svg.hist rect").count()).toBeGreaterThanOrEqual(1);
      await page.screenshot({ path: shot("job-succeeded.png") });

      // A node's page: hardware, calibrated speed, load against forecast, tasks.
      const node = nodes[0]!;
      await page.goto(`http://${admin}/dashboard#/node/${node.nodeId}`);
      await page.waitForSelector("#node-hw", { timeout: 10_000 });
      expect(await page.locator("#view-overview").isVisible()).toBe(false);
      const hw = await page.locator("#node-hw").innerText();
      expect(hw).toContain(`${node.profile!.cpu!.logicalCores} logical`);
      expect(hw).toMatch(/calibrated speed\s+\d+\.\d{3}/);
      expect(await page.locator("#node-load").innerText()).toMatch(/CPU \d+%/);
      expect(await page.locator("#node-tasks").count()).toBe(1);
      await page.screenshot({ path: shot("node.png") });

      // Drain: a read token is refused (403), from the page and straight; a GET or no token never drains.
      const read = (await t.client.createToken({ role: "read", tenant: "default", description: "dashboard read" })).token;
      const drainUrl = `http://${admin}/api/nodes/drain?node=${node.nodeId}`;
      expect((await fetch(drainUrl)).status).toBe(405);
      expect((await fetch(drainUrl, { method: "POST" })).status).toBe(401);
      expect((await fetch(drainUrl, { method: "POST", headers: { authorization: `Bearer ${read}` } })).status).toBe(403);
      await page.goto(`http://${admin}/dashboard?token=${read}#/node/${node.nodeId}`);
      await page.waitForSelector("#drain:not([disabled])", { timeout: 10_000 });
      expect(page.url()).not.toContain("token="); // dropped from the address bar
      await page.click("#drain");
      await page.waitForSelector("#drain-result.state-failed", { timeout: 10_000 });
      expect(await page.locator("#drain-result").innerText()).toMatch(/refused \(403\).*role read/);
      expect((await t.client.listNodes()).find((n) => n.nodeId === node.nodeId)?.state).toBe("NODE_STATE_READY");
      await page.screenshot({ path: shot("node-drain-refused.png") });

      // An admin token drains it: the scheduler marks it draining and places nothing more there.
      await page.evaluate(() => sessionStorage.clear());
      await page.goto(`http://${admin}/dashboard?token=${t.adminToken}#/node/${node.nodeId}`);
      await page.waitForSelector("#drain:not([disabled])", { timeout: 10_000 });
      await page.click("#drain");
      await page.waitForSelector("#drain-result.state-draining", { timeout: 10_000 });
      await until("the node draining", async () => (await t.client.listNodes()).find((n) => n.nodeId === node.nodeId)?.state === "NODE_STATE_DRAINING", 10_000);
      await page.waitForSelector('#node-state:text("draining")', { timeout: 10_000 });
      await page.screenshot({ path: shot("node-drained.png") });
      const after = await t.client.run({ kernelId: piId, inputs: getExampleKernel("montecarlo_pi").makeTasks({ tasks: 3, size: 1_000_000 }), name: "after-drain" });
      expect(after.job.state).toBe("JOB_STATE_SUCCEEDED");
      await page.goto(`http://${admin}/dashboard#/job/${after.job.jobId}`);
      await page.waitForSelector("#job-placement tr[data-node]", { timeout: 10_000 });
      expect(await page.locator(`#job-placement tr[data-node="${node.nodeId}"]`).count()).toBe(0);
      expect(await pwned(page)).toBeUndefined();
    } finally {
      await page.close();
    }
  }, 150_000);
});

describe("dashboard alerts and hostile names", () => {
  it("keeps the alert list bounded and grouped, and shows HTML in names and messages as text", async () => {
    const scheduler = new Scheduler(schedulerConfigSchema.parse({ port: 0, adminPort: 0, insecure: true }), createLogger("test", "error"));
    await scheduler.start();
    const page = await browser.newPage({ viewport: VIEWPORT });
    try {
      const profile = (hostname: string) => ({
        hostname, platform: "linux", arch: "x64",
        cpu: { vendor: "x", model: "Test CPU", physicalCores: 8, logicalCores: 16, baseGhz: 3, simd: ["avx2"] },
        memoryBytes: String(64 * 2 ** 30), gpus: [], calibration: null, workers: 16, labels: {}, kernelKinds: ["KERNEL_KIND_WASM" as const],
        gpuBackend: "", gpuRenderer: "", gpuCalibration: null, gpuExecutors: 0, niced: false,
      });
      const long = "build-worker-eu-west-3-rack-17-slot-04.very-long-subdomain.example.internal";
      const evil = scheduler.registry.register(profile(HOSTILE));
      const tall = scheduler.registry.register(profile(long));
      for (const n of [evil, tall]) scheduler.registry.attachSession(n.id, () => undefined);
      const bus = scheduler.monitoring.alerts;
      // One agent lost and back 25 times: one group, counted 25.
      for (let i = 0; i < 25; i++) {
        bus.fire("AgentLost", "critical", `agent ${HOSTILE} lost`, { node: evil.id });
        bus.resolve("AgentLost", { node: evil.id });
      }
      bus.fire("AgentLost", "critical", `agent ${HOSTILE} lost`, { node: evil.id });
      // 300 nodes predicted to saturate: 300 groups, more than are kept or shown.
      for (let i = 0; i < 300; i++) bus.fire("PredictedSaturation", "warning", `node n-${i} saturates`, { node: `n-${i}` });

      await page.goto(`http://${scheduler.monitoring.adminAddress}/dashboard`);
      await page.waitForSelector("#conn.ok", { timeout: 15_000 });
      await page.waitForSelector(`.alert[data-alert="AgentLost"][data-node="${evil.id}"]`, { timeout: 10_000 });
      expect(await page.locator(".alert").count()).toBe(50);
      expect(await page.locator(`.alert[data-alert="AgentLost"]`).count()).toBe(1);
      const group = page.locator(`.alert[data-alert="AgentLost"][data-node="${evil.id}"]`);
      expect(await group.locator(".count").innerText()).toBe("×26");
      expect(await group.innerText()).toContain(`agent ${HOSTILE} lost`);
      expect(await page.locator("#alert-summary").innerText()).toMatch(/50 of 200 groups/);
      // The hostile node name is text; the long one is shown whole.
      const card = `.node[data-node="${evil.id}"]`;
      expect(await page.locator(`${card} .h`).innerText()).toBe(HOSTILE);
      expect(await page.locator("#nodes img, #alerts img").count()).toBe(0);
      const v = await fullyVisible(page, `.node[data-node="${tall.id}"] .h`);
      expect(v.text).toBe(long);
      expect(v.scroll).toBeLessThanOrEqual(v.client);
      expect(await pwned(page)).toBeUndefined();
      await page.screenshot({ path: shot("alerts-grouped.png") });
      await page.goto(`http://${scheduler.monitoring.adminAddress}/dashboard#/node/${evil.id}`);
      await page.waitForSelector("#node-host", { timeout: 10_000 });
      expect(await page.locator("#node-host").innerText()).toBe(HOSTILE);
      expect(await page.locator("#view-node img").count()).toBe(0);
      expect(await pwned(page)).toBeUndefined();
    } finally {
      await page.close();
      await scheduler.stop(0);
    }
  }, 60_000);
});
