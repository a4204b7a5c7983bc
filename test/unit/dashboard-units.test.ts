// No Grafana panel mixes units on one axis: each query's unit (the panel's, or an override for its
// refId, which also moves it to the right axis) must fit what the query measures. Seconds are
// quantiles of *_seconds histograms or *_seconds gauges; per-second rates are rate(); counts are
// increase() and plain gauges.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../common/paths.js";

interface Override {
  matcher: { id: string; options: string };
  properties: { id: string; value: unknown }[];
}
interface Panel {
  type: string;
  title: string;
  targets?: { refId: string; expr?: string }[];
  fieldConfig?: { defaults?: { unit?: string }; overrides?: Override[] };
  panels?: Panel[];
}

type Kind = "seconds" | "per-second" | "fraction" | "count";

/** What a query measures, from its outermost shape and the metric's name. */
export function kindOf(expr: string): Kind {
  if (/^histogram_quantile\(/.test(expr) || /_seconds(\{[^}]*\})?$/.test(expr) || /_seconds:p\d+/.test(expr)) return "seconds";
  if (/_utilization|_ratio|\s\/\s/.test(expr)) return "fraction";
  if (/\brate\(/.test(expr)) return "per-second";
  return "count";
}

const UNITS: Record<Kind, string[]> = {
  seconds: ["s", "ms"],
  "per-second": ["reqps", "ops", "rps"],
  fraction: ["percentunit", "short"],
  count: ["short", "none"],
};

function unitOf(panel: Panel, refId: string): { unit: string; rightAxis: boolean } {
  const override = panel.fieldConfig?.overrides?.find((o) => o.matcher.id === "byFrameRefID" && o.matcher.options === refId);
  const unit = override?.properties.find((p) => p.id === "unit")?.value;
  const right = override?.properties.find((p) => p.id === "custom.axisPlacement")?.value === "right";
  return { unit: typeof unit === "string" ? unit : (panel.fieldConfig?.defaults?.unit ?? "short"), rightAxis: right };
}

const dir = path.join(repoRoot(), "deploy", "grafana", "dashboards");
const panels: Panel[] = [];
for (const file of readdirSync(dir).filter((f) => f.endsWith(".json"))) {
  const walk = (list: Panel[]) => list.forEach((p) => (panels.push(p), walk(p.panels ?? [])));
  walk((JSON.parse(readFileSync(path.join(dir, file), "utf8")) as { panels: Panel[] }).panels);
}
const charts = panels.filter((p) => p.type === "timeseries" && (p.targets?.length ?? 0) > 0);

describe("Grafana dashboard units", () => {
  it("classifies queries", () => {
    expect(kindOf("histogram_quantile(0.99, sum by (le) (rate(x_seconds_bucket[5m])))")).toBe("seconds");
    expect(kindOf("sum(rate(distx_placements_total[$__rate_interval]))")).toBe("per-second");
    expect(kindOf('distx:kernel_failure_ratio:rate5m{kernel=~"$kernel"}')).toBe("fraction");
    expect(kindOf("sum(increase(distx_nodes_lost_total[$__rate_interval]))")).toBe("count");
  });

  it.each(charts.map((p) => [p.title, p] as const))("%s: every query's unit fits it, and a second unit sits on the right axis", (_title, panel) => {
    const targets = panel.targets!.filter((t) => t.expr);
    const units = targets.map((t) => ({ expr: t.expr!, kind: kindOf(t.expr!), ...unitOf(panel, t.refId) }));
    for (const u of units) expect(UNITS[u.kind], `${u.expr} is ${u.kind} but shown in ${u.unit}`).toContain(u.unit);
    const leftUnits = new Set(units.filter((u) => !u.rightAxis).map((u) => u.unit));
    const rightUnits = new Set(units.filter((u) => u.rightAxis).map((u) => u.unit));
    expect(leftUnits.size, "one unit on the left axis").toBeLessThanOrEqual(1);
    expect(rightUnits.size, "one unit on the right axis").toBeLessThanOrEqual(1);
  });
});
