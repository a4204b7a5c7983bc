// A real Prometheus (the Debian package's binary) scrapes a real local cluster — a scheduler
// and two agents as separate processes — through their admin ports. Every target must be up,
// the shipped rules must load, and PromQL must report exactly the tasks the cluster ran.
import path from "node:path";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DistributeXClient } from "../../../client/index.js";
import { builtKernelsDir } from "../../../common/paths.js";
import { LocalCluster } from "../../../cli/local-cluster.js";
import { getExampleKernel } from "../../../kernels/reference/index.js";
import { deployDir, eventually, promQuery, startPrometheus, testOutputDir, type RunningPrometheus } from "../../helpers/monitoring.js";

const TASKS = 12;
let cluster: LocalCluster;
let prom: RunningPrometheus;
let client: DistributeXClient;
const targets: Record<string, string> = {};

beforeAll(async () => {
  cluster = new LocalCluster({ agents: 2, workersPerAgent: 1, logs: testOutputDir("prometheus-cluster-logs"), agentArgs: () => ["--no-calibrate"] });
  await cluster.start();
  for (const name of ["scheduler", "agent-0", "agent-1"]) targets[name] = await cluster.adminAddress(name);
  // The shipped rules go in too, so a rule that names a metric wrongly or fails to load shows here.
  const rules = readFileSync(deployDir("prometheus", "rules", "distx-alerts.yml"), "utf8");
  prom = await startPrometheus(
    [
      "global: { scrape_interval: 1s, evaluation_interval: 1s }",
      "rule_files: [distx-alerts.yml]",
      "scrape_configs:",
      "  - job_name: distx-scheduler",
      `    static_configs: [{ targets: ["${targets.scheduler}"] }]`,
      "  - job_name: distx-agent",
      `    file_sd_configs: [{ files: ["agents.json"], refresh_interval: 1s }]`,
    ].join("\n"),
    {
      "distx-alerts.yml": rules,
      // Agents through file_sd, the way deploy/prometheus/prometheus.yml finds them.
      "agents.json": JSON.stringify([{ targets: [targets["agent-0"], targets["agent-1"]], labels: { role: "agent" } }]),
    },
  );
  client = new DistributeXClient(cluster.address);
}, 90_000);

afterAll(async () => {
  client?.close();
  await prom?.stop();
  await cluster?.stop();
});

describe("Prometheus against a running cluster", () => {
  it("scrapes the scheduler and both agents as up", async () => {
    const up = await eventually(
      async () => {
        const r = await promQuery(prom.url, "up");
        return r.length === 3 && r.every((s) => s.value[1] === "1") ? r : undefined;
      },
      30_000,
      "all three targets up",
    );
    const byJob = up.map((s) => `${s.metric.job} ${s.metric.instance}`).sort();
    expect(byJob).toEqual([`distx-agent ${targets["agent-0"]}`, `distx-agent ${targets["agent-1"]}`, `distx-scheduler ${targets.scheduler}`].sort());
    const health = (await (await fetch(`${prom.url}/api/v1/targets`)).json()) as { data: { activeTargets: { health: string; lastError: string }[] } };
    expect(health.data.activeTargets.map((t) => t.health)).toEqual(["up", "up", "up"]);
  });

  it("loads the shipped alert rules with no evaluation errors", async () => {
    const res = (await (await fetch(`${prom.url}/api/v1/rules`)).json()) as {
      data: { groups: { name: string; rules: { name: string; health: string; lastError?: string }[] }[] };
    };
    const rules = res.data.groups.flatMap((g) => g.rules);
    expect(rules.length).toBeGreaterThanOrEqual(10);
    await eventually(
      async () => {
        const r = (await (await fetch(`${prom.url}/api/v1/rules`)).json()) as typeof res;
        const all = r.data.groups.flatMap((g) => g.rules);
        const bad = all.filter((x) => x.health === "err");
        if (bad.length) throw new Error(bad.map((b) => `${b.name}: ${b.lastError}`).join("; "));
        return all.every((x) => x.health === "ok") ? true : undefined;
      },
      20_000,
      "every rule evaluated ok",
    );
  });

  it("PromQL reports the task counts the cluster really ran", async () => {
    const example = getExampleKernel("montecarlo_pi");
    const { kernelId } = await client.registerKernelFile(path.join(builtKernelsDir(), "montecarlo_pi.wasm"));
    const { job } = await client.run({ kernelId, inputs: example.makeTasks({ tasks: TASKS, size: 200_000 }), name: "prom-e2e" });
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    const ranOn = (await client.getResults(job.jobId)).map((r) => r.nodeId);
    expect(ranOn).toHaveLength(TASKS);

    const scalar = async (q: string) => {
      const r = await promQuery(prom.url, q);
      return r.length === 1 ? Number(r[0]!.value[1]) : undefined;
    };
    // Scheduler view and the agents' own counts (summed over both agents) must both equal TASKS.
    await eventually(async () => ((await scalar('sum(distx_tasks_finished_total{state="succeeded"})')) === TASKS ? true : undefined), 20_000, "scheduler count");
    await eventually(async () => ((await scalar("sum(distx_tasks_submitted_total)")) === TASKS ? true : undefined), 20_000, "submitted count");
    await eventually(
      async () => ((await scalar('sum(distx_agent_tasks_completed_total{kernel="montecarlo_pi",backend="wasm",outcome="succeeded"})')) === TASKS ? true : undefined),
      20_000,
      "agent count",
    );
    await eventually(async () => ((await scalar("sum(distx_kernel_run_seconds_count)")) === TASKS ? true : undefined), 20_000, "kernel histogram count");
    expect(await scalar("sum(distx_placements_total)")).toBeGreaterThanOrEqual(TASKS);
    expect(await scalar('distx_jobs{state="succeeded"}')).toBe(1);

    // Per agent, Prometheus's numbers match where the scheduler says each task ran.
    const perAgent = await promQuery(prom.url, 'sum by (instance) (distx_agent_tasks_completed_total{outcome="succeeded"})');
    const nodeOf = await promQuery(prom.url, "distx_agent_info");
    expect(perAgent.reduce((sum, s) => sum + Number(s.value[1]), 0)).toBe(TASKS);
    const instanceToNode = new Map(nodeOf.map((s) => [s.metric.instance!, s.metric.node!]));
    for (const s of perAgent) {
      const node = instanceToNode.get(s.metric.instance!);
      expect(Number(s.value[1])).toBe(ranOn.filter((n) => n === node).length);
    }
  });
});
