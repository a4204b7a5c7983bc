// Every query in the Grafana dashboard and the Prometheus rules must parse (promtool's PromQL
// parser) and may only name metrics the code really exports: the names are read from the
// /metrics of a real scheduler and a real agent running here over loopback, plus the
// recording rules' outputs and Prometheus's own `up` and `ALERTS`.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Agent } from "../../../agent/agent.js";
import { agentConfigSchema, schedulerConfigSchema } from "../../../common/config.js";
import { createLogger } from "../../../common/logger.js";
import { metricNamesFromText } from "../../../scheduler/metrics.js";
import { Scheduler } from "../../../scheduler/scheduler.js";
import { deployDir, requireBinary } from "../../helpers/monitoring.js";

const PROMQL_KEYWORDS = new Set(["and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "inf", "nan"]);
const PROMETHEUS_BUILTINS = new Set(["up", "ALERTS", "ALERTS_FOR_STATE"]);

/** Metric names a PromQL expression selects (functions, labels, keywords and durations removed). */
export function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""') // label values, which may hold anything
    .replace(/\{[^}]*\}/g, " ") // label matchers
    .replace(/\[[^\]]*\]/g, " ") // range selectors and subqueries
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  const names = new Set<string>();
  for (const m of stripped.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?/g)) {
    const [, name, call] = m;
    if (call || PROMQL_KEYWORDS.has(name!.toLowerCase())) continue;
    const before = stripped[m.index! - 1];
    if (before && /[0-9.$]/.test(before)) continue; // part of a number (1e3) or a Grafana variable
    names.add(name!);
  }
  return [...names];
}

/** Grafana's variables, replaced by values that make the expression plain PromQL. */
const grafanaToPromql = (expr: string) =>
  expr.replace(/\$__rate_interval|\$__interval|\$__range/g, "5m").replace(/\$\{?(\w+)\}?/g, ".*");

interface Panel {
  title?: string;
  targets?: { expr?: string }[];
  panels?: Panel[];
}

function dashboardQueries(): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  const dir = deployDir("grafana", "dashboards");
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".json"))) {
    const dash = JSON.parse(readFileSync(path.join(dir, file), "utf8")) as { panels: Panel[]; templating: { list: { name: string; query?: unknown }[] } };
    const walk = (panels: Panel[]) => {
      for (const p of panels) {
        for (const t of p.targets ?? []) if (t.expr) out.push({ where: `${file}: ${p.title}`, expr: t.expr });
        walk(p.panels ?? []);
      }
    };
    walk(dash.panels);
    for (const v of dash.templating.list) {
      const q = typeof v.query === "object" && v.query ? (v.query as { query?: string }).query : undefined;
      const m = q ? /^label_values\((\w+),/.exec(q) : null;
      if (m) out.push({ where: `${file}: variable ${v.name}`, expr: m[1]! });
    }
  }
  return out;
}

function ruleQueries(): { where: string; expr: string; record?: string }[] {
  const text = readFileSync(deployDir("prometheus", "rules", "distx-alerts.yml"), "utf8");
  // The rules file is plain YAML written by us: `record:`/`alert:` then an `expr:` (inline or a | block).
  const out: { where: string; expr: string; record?: string }[] = [];
  const lines = text.split("\n");
  let current: { where: string; record?: string } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const rec = /^\s*- (record|alert): (\S+)/.exec(line);
    if (rec) current = { where: `rules: ${rec[2]}`, ...(rec[1] === "record" ? { record: rec[2] } : {}) };
    const ex = /^(\s*)expr: (.*)$/.exec(line);
    if (ex && current) {
      let expr = ex[2]!;
      if (expr.trim() === "|") {
        const indent = ex[1]!.length;
        const block: string[] = [];
        while (i + 1 < lines.length && (lines[i + 1]!.trim() === "" || lines[i + 1]!.search(/\S/) > indent)) block.push(lines[++i]!.trim());
        expr = block.join(" ");
      }
      out.push({ ...current, expr });
    }
  }
  return out;
}

let scheduler: Scheduler;
let agent: Agent;
let exported: Set<string>;

beforeAll(async () => {
  const log = createLogger("test", "error");
  scheduler = new Scheduler(schedulerConfigSchema.parse({ port: 0, adminPort: 0 }), log);
  const address = await scheduler.start();
  agent = new Agent(agentConfigSchema.parse({ scheduler: address, workers: 1, calibrate: false, adminPort: 0 }), log);
  await agent.start();
  const texts = await Promise.all(
    [scheduler.monitoring.adminAddress, agent.adminAddress].map(async (a) => (await fetch(`http://${a}/metrics`)).text()),
  );
  exported = new Set(texts.flatMap(metricNamesFromText));
}, 60_000);

afterAll(async () => {
  await agent?.stop(0);
  await scheduler?.stop(0);
});

describe("dashboard and rule queries name only exported metrics", () => {
  it("the extractor finds metric names and skips functions, labels and variables", () => {
    expect(metricNamesIn('histogram_quantile(0.99, sum by (le, kernel) (rate(distx_kernel_run_seconds_bucket{kernel=~"$kernel"}[$__rate_interval])))')).toEqual([
      "distx_kernel_run_seconds_bucket",
    ]);
    expect(metricNamesIn('distx:a > distx_b * 1.1 and on() sum(distx_queue_depth{x="a b"}) > 1e3').sort()).toEqual(["distx:a", "distx_b", "distx_queue_depth"]);
  });

  it("the scheduler and agent export the metric families the issue asks for", () => {
    for (const name of [
      "distx_jobs", "distx_tasks", "distx_placements_total", "distx_placement_latency_seconds_bucket", "distx_queue_depth", "distx_agents",
      "distx_task_retries_total", "distx_result_cache_hits_total", "distx_forecast_error_ratio", "distx_alerts_fired_total",
      "distx_node_predicted_saturation_seconds", "distx_agent_tasks_running", "distx_agent_tasks_completed_total", "distx_kernel_run_seconds_bucket",
      "distx_kernel_wait_seconds_bucket", "distx_agent_worker_restarts_total", "distx_agent_cpu_utilization", "distx_agent_memory_utilization",
      "distx_agent_gpu_utilization",
    ]) expect(exported, name).toContain(name);
    // Naming conventions: counters end in _total, nothing is in milliseconds.
    for (const name of exported) {
      expect(name, name).not.toMatch(/_ms$|_millis/);
    }
  });

  it("every dashboard and rule expression parses and uses only exported or recorded metrics", () => {
    const rules = ruleQueries();
    const recorded = new Set(rules.flatMap((r) => (r.record ? [r.record] : [])));
    const queries = [...dashboardQueries(), ...rules];
    expect(queries.length).toBeGreaterThan(40);
    const unknown: string[] = [];
    for (const q of queries) {
      const names = metricNamesIn(q.expr);
      expect(names.length, `${q.where}: ${q.expr}`).toBeGreaterThan(0);
      for (const n of names) if (!exported.has(n) && !recorded.has(n) && !PROMETHEUS_BUILTINS.has(n)) unknown.push(`${q.where}: ${n}`);
    }
    expect(unknown).toEqual([]);

    // Syntax: hand every expression to promtool's parser as a recording rule.
    const dir = mkdtempSync(path.join(os.tmpdir(), "distx-promql-"));
    const file = path.join(dir, "exprs.yml");
    const body = ["groups:", "  - name: check", "    rules:"];
    queries.forEach((q, i) => body.push(`      - record: check:expr${i}`, `        expr: ${JSON.stringify(grafanaToPromql(q.expr))}`));
    writeFileSync(file, body.join("\n") + "\n");
    const r = spawnSync(requireBinary("promtool", "prometheus"), ["check", "rules", file], { encoding: "utf8" });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
  });

  it("the provisioning files point Grafana at the dashboard folder and a Prometheus datasource", () => {
    const ds = readFileSync(deployDir("grafana", "provisioning", "datasources", "distributex.yml"), "utf8");
    expect(ds).toMatch(/type: prometheus/);
    expect(ds).toMatch(/uid: distx-prometheus/);
    const prov = readFileSync(deployDir("grafana", "provisioning", "dashboards", "distributex.yml"), "utf8");
    expect(prov).toMatch(/type: file/);
    const dash = JSON.parse(readFileSync(deployDir("grafana", "dashboards", "distributex.json"), "utf8")) as { uid: string; panels: { type: string; title: string }[] };
    const rows = dash.panels.filter((p) => p.type === "row").map((p) => p.title);
    expect(rows).toEqual(["Cluster overview", "Per-node load and forecast", "Jobs: throughput and latency", "Kernel performance", "Alerts"]);
  });
});
