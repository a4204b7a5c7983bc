// Scores a forecaster configuration on the fixed train/validation split (split.json), with the
// naive and seasonal-naive baselines on exactly the same forecast origins and targets.
import { readFileSync } from "node:fs";
import { NodeLoadForecaster } from "../../scheduler/forecast/node-forecaster.js";
import type { StepForecasterOptions } from "../../scheduler/forecast/model-options.js";
import type { Series } from "./csv.js";

export interface SplitSpec {
  kind: "time";
  trainFraction: number;
  warmupHours: number;
  stepSeconds: number;
  horizonsMinutes: number[];
  selection: string;
  candidates: { name: string; model: StepForecasterOptions }[];
}

export function loadSplit(file: string): SplitSpec {
  const s = JSON.parse(readFileSync(file, "utf8")) as SplitSpec;
  if (s.kind !== "time" || !(s.trainFraction > 0 && s.trainFraction < 1)) throw new Error(`${file}: need kind "time" and 0 < trainFraction < 1`);
  if (!Array.isArray(s.candidates) || s.candidates.length === 0) throw new Error(`${file}: no candidates`);
  return s;
}

export type Method = "model" | "naive" | "seasonalNaiveHourly" | "seasonalNaiveDaily";
export const METHODS: readonly Method[] = ["model", "naive", "seasonalNaiveHourly", "seasonalNaiveDaily"];
export type Part = "train" | "validation";

/** Per part, per horizon: summed absolute error of each method and the count (same targets for all methods). */
export type SplitErrors = Record<Part, { count: number[]; err: Record<Method, number[]> }>;

const emptyPart = (h: number) => ({
  count: new Array<number>(h).fill(0),
  err: Object.fromEntries(METHODS.map((m) => [m, new Array<number>(h).fill(0)])) as Record<Method, number[]>,
});

/**
 * Replays one series through a NodeLoadForecaster with `model` options. From every step after
 * the warm-up, each horizon's forecast is scored against the actual at its target time; the
 * target's time decides the part. `trainOnly` stops at the split (for tuning: validation data
 * is never read).
 */
export function scoreSplit(s: Series, spec: SplitSpec, model: StepForecasterOptions, trainOnly = false): SplitErrors {
  const stepMs = spec.stepSeconds * 1000;
  const hSteps = spec.horizonsMinutes.map((m) => Math.round((m * 60) / spec.stepSeconds));
  const warmup = Math.round((spec.warmupHours * 3600) / spec.stepSeconds);
  const t0 = s.tMs[0]!;
  const tEnd = s.tMs[s.tMs.length - 1]!;
  const splitMs = t0 + spec.trainFraction * (tEnd - t0);
  const fc = new NodeLoadForecaster({ stepMs, horizonsMs: hSteps.map((h) => h * stepMs), model });
  const byTime = new Map<number, number>();
  // pending[target] = per horizon k: [model, naive, seasonal hourly, seasonal daily]
  const pending = new Map<number, { k: number; f: number[] }[]>();
  const out: SplitErrors = { train: emptyPart(hSteps.length), validation: emptyPart(hSteps.length) };
  const hour = Math.round(3600 / spec.stepSeconds);
  const day = 24 * hour;
  for (let i = 0; i < s.values.length; i++) {
    const t = s.tMs[i]!;
    const v = s.values[i]!;
    if (trainOnly && t > splitMs) break;
    byTime.set(t, v);
    const due = pending.get(t);
    if (due) {
      pending.delete(t);
      const part = out[t <= splitMs ? "train" : "validation"];
      for (const { k, f } of due) {
        part.count[k]!++;
        METHODS.forEach((m, j) => (part.err[m][k]! += Math.abs(v - f[j]!)));
      }
    }
    fc.observe(t, v);
    if (fc.completedSteps <= warmup || fc.lastStepTimeMs !== t) continue;
    for (let k = 0; k < hSteps.length; k++) {
      const h = hSteps[k]!;
      const target = t + h * stepMs;
      // Seasonal naive: the value one season before the target (the latest same-phase value we have).
      const back = (p: number) => byTime.get(target - Math.ceil(h / p) * p * stepMs);
      const f = [fc.forecast(h * stepMs).mean, v, back(hour), back(day)];
      if (!f.every((x) => x !== undefined && Number.isFinite(x))) continue;
      const list = pending.get(target) ?? [];
      list.push({ k, f: f as number[] });
      pending.set(target, list);
    }
  }
  return out;
}

/** Ratio of a method's MAE to naive's, per horizon, for one part (NaN when nothing was scored). */
export function ratios(e: SplitErrors, part: Part, m: Method): number[] {
  const p = e[part];
  return p.count.map((_, k) => (p.err.naive[k]! > 0 ? p.err[m][k]! / p.err.naive[k]! : Number.NaN));
}

export const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** Mean over series and horizons of the per-series, per-horizon MAE ratio (the figure bench/results/forecast.md reports). */
export function meanRatio(all: SplitErrors[], part: Part, m: Method): number {
  return mean(all.map((e) => mean(ratios(e, part, m))));
}
