/**
 * Chooses the live (1 s heartbeat) forecaster's settings on the training part of recorded
 * heartbeat series only, the discipline of bench/forecast/tune.ts.
 *
 *   npx tsx bench/forecast/live-tune.ts RECORDING.ndjson [...] [--out bench/forecast/live-chosen.json]
 *
 * Each recording (bench/forecast/live.ts writes one) is split by time: forecasts scored before
 * 70 % of its span are training. Every candidate below is replayed over the training part of
 * every recording (scoring stops at the split, so validation values are never read), scored
 * like the live gauge (pooled ratio), and the lowest mean training ratio is written out. The
 * validation part is scored afterwards, for the report only, for the chosen settings and the
 * previous ones.
 */
import { writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { repoRoot } from "../../common/paths.js";
import { LIVE_PREVIOUS_FORECASTER, readRecording, replayScore, splitTime, type LiveForecasterOptions } from "./live-replay.js";

const argv = process.argv.slice(2);
const outIdx = argv.indexOf("--out");
const root = repoRoot();
const out = resolve(outIdx >= 0 ? argv[outIdx + 1]! : join(root, "bench", "forecast", "live-chosen.json"));
const files = argv.filter((a, i) => !a.startsWith("--") && (outIdx < 0 || i !== outIdx + 1));
if (files.length === 0) throw new Error("usage: live-tune.ts RECORDING.ndjson [...] [--out FILE]");
const TRAIN_FRACTION = 0.7;
const base = LIVE_PREVIOUS_FORECASTER.model!;
const withModel = (m: Record<string, unknown>): LiveForecasterOptions => ({ model: { ...base, ...m } });

// One change each from the previous settings, a few pairs of the ones that help on step-like series, and
// the level-shift rule alone and on top of the best pair (2026-11-29).
const candidates: { name: string; options: LiveForecasterOptions }[] = [
  { name: "previous", options: LIVE_PREVIOUS_FORECASTER },
  { name: "selectionHalfLifeSteps 30", options: withModel({ selectionHalfLifeSteps: 30 }) },
  { name: "selectionHalfLifeSteps 60", options: withModel({ selectionHalfLifeSteps: 60 }) },
  { name: "selectionMargin 0", options: withModel({ selectionMargin: 0 }) },
  { name: "robustK 0", options: withModel({ robustK: 0 }) },
  { name: "robustK 3", options: withModel({ robustK: 3 }) },
  { name: "seasonality none", options: withModel({ seasonality: "none" }) },
  { name: "damped false", options: withModel({ damped: false }) },
  { name: "historySteps 120", options: withModel({ historySteps: 120, refitEverySteps: 30 }) },
  { name: "historySteps 480", options: withModel({ historySteps: 480 }) },
  { name: "refitEverySteps 20", options: withModel({ refitEverySteps: 20 }) },
  { name: "ensemble false", options: withModel({ ensemble: false }) },
  { name: "selectionHalfLifeSteps 30 + margin 0", options: withModel({ selectionHalfLifeSteps: 30, selectionMargin: 0 }) },
  { name: "seasonality none + selectionHalfLifeSteps 30", options: withModel({ seasonality: "none", selectionHalfLifeSteps: 30 }) },
  { name: "seasonality none + margin 0", options: withModel({ seasonality: "none", selectionMargin: 0 }) },
  // Level shifts re-anchor Holt-Winters (holt-winters.ts): the threshold in residual scales and the run length.
  { name: "shiftK 2", options: withModel({ shiftK: 2 }) },
  { name: "shiftK 3", options: withModel({ shiftK: 3 }) },
  { name: "shiftK 4", options: withModel({ shiftK: 4 }) },
  { name: "shiftK 6", options: withModel({ shiftK: 6 }) },
  { name: "shiftK 3 + shiftRun 3", options: withModel({ shiftK: 3, shiftRun: 3 }) },
  { name: "shiftK 4 + shiftRun 3", options: withModel({ shiftK: 4, shiftRun: 3 }) },
  { name: "shiftK 3 + shiftRun 1", options: withModel({ shiftK: 3, shiftRun: 1 }) },
  { name: "shiftK 4 + shiftRun 1", options: withModel({ shiftK: 4, shiftRun: 1 }) },
  { name: "shiftK 6 + shiftRun 1", options: withModel({ shiftK: 6, shiftRun: 1 }) },
  { name: "shiftK 3 + selectionHalfLifeSteps 30", options: withModel({ shiftK: 3, selectionHalfLifeSteps: 30 }) },
  { name: "seasonality none + selectionHalfLifeSteps 30 + shiftK 2", options: withModel({ seasonality: "none", selectionHalfLifeSteps: 30, shiftK: 2 }) },
  { name: "seasonality none + selectionHalfLifeSteps 30 + shiftK 3", options: withModel({ seasonality: "none", selectionHalfLifeSteps: 30, shiftK: 3 }) },
  { name: "seasonality none + selectionHalfLifeSteps 30 + shiftK 4", options: withModel({ seasonality: "none", selectionHalfLifeSteps: 30, shiftK: 4 }) },
  { name: "seasonality none + shiftK 3", options: withModel({ seasonality: "none", shiftK: 3 }) },
  // The naive gate (naive-gate.ts) on top of the settings chosen before it: half-life, enter / exit.
  ...([[30, 0.95, 1], [144, 0.95, 1], [576, 0.95, 1], [144, 1, 1], [144, 0.9, 1.05]] as const).map(([hl, enter, exit]) => ({
    name: `seasonality none + selectionHalfLifeSteps 30 + gate ${hl} (${enter}/${exit})`,
    options: withModel({ seasonality: "none", selectionHalfLifeSteps: 30, gateHalfLifeSteps: hl, gateEnter: enter, gateExit: exit }),
  })),
];

const recordings = files.map((f) => ({ file: f, recs: readRecording(f) }));
// A recording whose training part is constant (a host pinned at exactly 100 % by other work) scores
// 0 / 0 = NaN for every candidate: it carries no information and is left out of the mean.
const mean = (xs: number[]) => {
  const ok = xs.filter((x) => Number.isFinite(x));
  return ok.length > 0 ? ok.reduce((a, b) => a + b, 0) / ok.length : Number.NaN;
};
const scored = candidates.map((c) => {
  const train = recordings.map(({ recs }) => {
    const split = splitTime(recs, TRAIN_FRACTION);
    // stopAt = split: nothing after the split point is replayed while choosing.
    return replayScore(recs, 1000, c.options, split, split).all;
  });
  console.error(`${c.name}: train ${train.map((x) => x.toFixed(4)).join(" ")} mean ${mean(train).toFixed(4)}`);
  return { ...c, train: mean(train), perRecording: train };
});
let best = scored[0]!;
for (const c of scored) if (c.train < best.train) best = c;
// Per recording: a short one may have no validation entry with enough scores (NaN, written as null).
const validation = (o: LiveForecasterOptions) => recordings.map(({ recs }) => replayScore(recs, 1000, o, splitTime(recs, TRAIN_FRACTION)).validation);
const chosen = {
  comment: "Written by bench/forecast/live-tune.ts: the candidate with the lowest mean training ratio (first 70 % of each recording). Validation scored after the choice, for the report.",
  generatedAt: new Date().toISOString(),
  recordings: files.map((f) => relative(root, resolve(f))),
  chosen: { name: best.name, options: best.options, train: best.train, validation: validation(best.options) },
  previous: { train: scored[0]!.train, validation: validation(LIVE_PREVIOUS_FORECASTER) },
  candidates: scored.map((c) => ({ name: c.name, train: c.train })),
};
writeFileSync(out, JSON.stringify(chosen, null, 2) + "\n");
console.log(JSON.stringify(chosen, null, 2));
