// bench/alerts: lead time and false alarms of predicted-saturation alerts (see replay.ts).
//   npm run bench:alerts [-- --quick]   writes bench/results/alerts.md (not with --quick)
// Sizes: DISTX_BENCH_SEEDS (shape seeds per part, default 2), DISTX_BENCH_TRACE_ROWS (rows of each
// trace half, 1000), DISTX_BENCH_PLATEAU_STEPS (steps of each noisy plateau, 1200),
// DISTX_BENCH_BOUNDS (upper,mean,trend), DISTX_BENCH_HORIZONS (seconds, 10,15,20);
// DISTX_BENCH_DEFAULTS=0 skips the held-out tables of the scheduler's default settings and of the
// previous defaults (bound upper).
import { writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { repoRoot } from "../../common/paths.js";
import { findCsvFiles, loadTraceCsv } from "../forecast/csv.js";
import { schedulerConfigSchema } from "../../common/config.js";
import { PLATEAU_STEPS, replay, shape, thresholdRule, type Outcome, type Settings } from "./replay.js";

const quick = process.argv.includes("--quick");
/** Sizes are environment knobs: the replay costs 2-5 ms a step, and a shared 2-core machine sets the budget. */
const SEEDS = Number(process.env.DISTX_BENCH_SEEDS ?? (quick ? 1 : 2));
const TRAIN_SEEDS = Array.from({ length: SEEDS }, (_, i) => i + 1);
const TEST_SEEDS = Array.from({ length: SEEDS }, (_, i) => 101 + i);
/** Rows of each trace half replayed. */
const TRACE_ROWS = Number(process.env.DISTX_BENCH_TRACE_ROWS ?? (quick ? 300 : 1000));
const EVENTS = ["step", "ramp2", "ramp5", "ramp20", "ramp40", "boot20"];
const PLATEAUS = quick ? ["plateau70"] : ["plateau60", "plateau70", "plateau80"];
const GRID: Settings[] = [];
/** DISTX_BENCH_BOUNDS / DISTX_BENCH_HORIZONS narrow the grid (long plateaus make each setting cost minutes). */
const BOUNDS = (process.env.DISTX_BENCH_BOUNDS ?? "upper,mean,trend").split(",") as Settings["bound"][];
const HORIZONS = (process.env.DISTX_BENCH_HORIZONS ?? "10,15,20").split(",").map((x) => Number(x) * 1000);
for (const bound of BOUNDS) for (const horizonMs of HORIZONS) GRID.push({ bound, horizonMs });
const BASELINE_WARN_AT = 0.8;

interface Case {
  name: string;
  series: number[];
}

function traces(part: "train" | "test"): Case[] {
  const dir = path.join(repoRoot(), "..", "shared", "data", "traces");
  return findCsvFiles(dir).map((f) => {
    const s = loadTraceCsv(f, path.basename(f));
    const max = Math.max(...s.values);
    const values = s.values.map((v) => (max > 1.5 ? v / 100 : v)); // NAB: percent; cluster: fraction
    const half = Math.floor(values.length / 2);
    return { name: `trace:${s.name}`, series: (part === "train" ? values.slice(0, half) : values.slice(half)).slice(0, TRACE_ROWS) };
  });
}

function cases(part: "train" | "test"): Case[] {
  const seeds = part === "train" ? TRAIN_SEEDS : TEST_SEEDS;
  const out: Case[] = [];
  for (const kind of [...EVENTS, ...PLATEAUS]) for (const seed of seeds) out.push({ name: `${kind}#${seed}`, series: shape(kind, seed) });
  return [...out, ...traces(part)];
}

const kindOf = (name: string) => (name.startsWith("trace:") ? "traces (5-min rows replayed at 1 s)" : name.split("#")[0]!);

interface Row {
  kind: string;
  o: Outcome;
}
function sum(list: Outcome[]): Outcome {
  return list.reduce(
    (a, b) => ({
      crossings: a.crossings + b.crossings,
      leads: [...a.leads, ...b.leads],
      missed: a.missed + b.missed,
      afterTheFact: a.afterTheFact + b.afterTheFact,
      falseAlerts: a.falseAlerts + b.falseAlerts,
      alerts: a.alerts + b.alerts,
      worstResolveSteps: Math.max(a.worstResolveSteps, b.worstResolveSteps),
      steps: a.steps + b.steps,
    }),
    { crossings: 0, leads: [], missed: 0, afterTheFact: 0, falseAlerts: 0, alerts: 0, worstResolveSteps: 0, steps: 0 },
  );
}
const byKind = (rows: Row[]) => {
  const m = new Map<string, Outcome[]>();
  for (const r of rows) m.set(r.kind, [...(m.get(r.kind) ?? []), r.o]);
  return [...m].map(([kind, list]) => ({ kind, o: sum(list) }));
};
const min = (xs: number[]) => (xs.length ? Math.min(...xs) : NaN);
const median = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]! : NaN);
const perDay = (o: Outcome) => (o.falseAlerts / o.steps) * 86_400;
const s1 = (ms: number) => (Number.isFinite(ms) ? (ms / 1000).toFixed(0) : "–");

/** Training score: meet the false-alarm goal on noise first, then the worst lead on 5 s and 20 s ramps. */
function score(rows: Row[]): number {
  const k = new Map(byKind(rows).map((r) => [r.kind, r.o]));
  const noise = sum([...k].filter(([n]) => n.startsWith("plateau")).map(([, o]) => o));
  const lead = (n: string) => {
    const o = k.get(n);
    return o && o.missed === 0 ? min(o.leads) : 0;
  };
  const penalty = perDay(noise) > 1 ? 1e6 * perDay(noise) : 0;
  return lead("ramp5") + lead("ramp20") - penalty - 1e5 * sum([...k.values()]).afterTheFact;
}

function run(settings: Settings, part: "train" | "test"): Row[] {
  return cases(part).map((c) => ({ kind: kindOf(c.name), o: replay(c.series, settings) }));
}
function runBaseline(part: "train" | "test", horizonMs: number): Row[] {
  return cases(part).map((c) => ({ kind: kindOf(c.name), o: thresholdRule(c.series, BASELINE_WARN_AT, horizonMs) }));
}

function table(title: string, pred: Row[], base: Row[]): string {
  const b = new Map(byKind(base).map((r) => [r.kind, r.o]));
  const lines = [
    `#### ${title}`,
    "",
    "| shape | crossings | predicted before (missed) | lead min / median s | baseline lead min / median s (missed) | lead ratio (median) | after the fact (baseline) | false alerts per node-day (baseline) | worst resolve, steps |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const { kind, o } of byKind(pred)) {
    const q = b.get(kind)!;
    const ratio = median(q.leads) > 0 && o.leads.length > 0 ? (median(o.leads) / median(q.leads)).toFixed(2) : "–";
    lines.push(
      `| ${kind} | ${o.crossings} | ${o.leads.length} (${o.missed}) | ${s1(min(o.leads))} / ${s1(median(o.leads))} | ${s1(min(q.leads))} / ${s1(median(q.leads))} (${q.missed}) | ${ratio} | ${o.afterTheFact} (${q.afterTheFact}) | ${perDay(o).toFixed(1)} (${perDay(q).toFixed(1)}) | ${o.worstResolveSteps} |`,
    );
  }
  return lines.join("\n");
}

const t0 = performance.now();
const load0 = os.loadavg();
const trained = GRID.map((s) => ({ s, rows: run(s, "train") })).map((r) => ({ ...r, score: score(r.rows) }));
trained.sort((a, b) => b.score - a.score);
const best = trained[0]!;
const out: string[] = [];
out.push("# Predicted-saturation alerts: lead time and false alarms (bench/alerts)");
out.push("");
const knobs = Object.entries(process.env).filter(([k]) => k.startsWith("DISTX_BENCH_")).map(([k, v]) => `${k}=${v} `).join("");
out.push(`Run: \`${knobs}npm run bench:alerts\` (${new Date().toISOString().slice(0, 16)}Z), ${os.cpus().length}× ${os.cpus()[0]?.model}, load average ${load0.map((x) => x.toFixed(1)).join(" ")} at start (shared machine), ${((performance.now() - t0) / 1000).toFixed(0)} s for training.`);
out.push("");
out.push(`Replay through the real PlacementController (NodeRegistry heartbeats, forecaster, alert state), 1 s heartbeats, threshold ${0.9}, cooldown 0.`);
out.push(`Scaled to the time at hand: ${TRAIN_SEEDS.length} seeds per shape per part, noisy plateaus of ${PLATEAU_STEPS} steps each, the first ${TRACE_ROWS} rows of each trace half. False alerts per node-day are extrapolated from that much noise (one alert in the plateaus of one part is ${(86_400 / (PLATEAUS.length * TRAIN_SEEDS.length * PLATEAU_STEPS)).toFixed(0)} per node-day), so the ≤ 1 goal cannot be shown at this size.`);
out.push(`Baseline, same samples: a plain threshold rule "two samples in a row ≥ ${BASELINE_WARN_AT}" (no forecast).`);
out.push("");
out.push("Training (shape seeds " + TRAIN_SEEDS.join(",") + ", first half of each trace); score = worst lead on 5 s + 20 s ramps, with more than 1 false alert per node-day on the plateaus or any after-the-fact alert disqualifying:");
out.push("");
out.push("| bound | horizon s | score |");
out.push("| --- | ---: | ---: |");
for (const t of trained) out.push(`| ${t.s.bound} | ${t.s.horizonMs / 1000} | ${t.score.toFixed(0)} |`);
out.push("");
out.push(`Chosen: bound ${best.s.bound}, horizon ${best.s.horizonMs / 1000} s.`);
out.push("");
out.push(table("Training part, chosen settings", best.rows, runBaseline("train", best.s.horizonMs)));
out.push("");
out.push(table("Held-out part (seeds " + TEST_SEEDS.join(",") + ", second halves of the traces), chosen settings", run(best.s, "test"), runBaseline("test", best.s.horizonMs)));
out.push("");
if (process.env.DISTX_BENCH_DEFAULTS !== "0") {
  // The scheduler's defaults, and the ones before trend became the default, on the same samples.
  const d = schedulerConfigSchema.parse({});
  for (const [title, s] of [
    [`the scheduler's defaults (bound ${d.saturationBound}, horizon ${d.saturationHorizonMs / 1000} s)`, { bound: d.saturationBound, horizonMs: d.saturationHorizonMs }],
    ["the previous defaults (bound upper, horizon 15 s)", { bound: "upper", horizonMs: 15_000 }],
  ] as const) {
    out.push(table(`Held-out part, ${title}`, run(s, "test"), runBaseline("test", s.horizonMs)));
    out.push("");
  }
}
out.push(`Total ${((performance.now() - t0) / 1000).toFixed(0)} s; load average at the end ${os.loadavg().map((x) => x.toFixed(1)).join(" ")}.`);
const text = out.join("\n") + "\n";
process.stdout.write(text);
if (!quick) writeFileSync(path.join(repoRoot(), "bench", "results", "alerts.md"), text);
