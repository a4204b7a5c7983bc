// Replays recorded heartbeat load (scheduler/placement/load-recorder.ts) through the scheduler's
// utilisation forecaster, scored exactly as the live distx_forecast_error_ratio is (pooled over
// nodes × tracked horizons with ≥ LIVE_RATIO_MIN_COUNT scores), on a training and a validation
// part split by time. Used by bench/forecast/live.ts (report) and live-tune.ts (choice).
import { readFileSync } from "node:fs";
import { NodeLoadForecaster, pooledErrorRatio, type NodeLoadForecasterOptions, type ScoredAccuracy } from "../../scheduler/forecast/index.js";
import type { RecordedLoad } from "../../scheduler/placement/load-recorder.js";
import { UTILIZATION_FORECASTER, type NodeLoadObservation, type UtilizationInputs } from "../../scheduler/placement/load-model.js";

export type LiveForecasterOptions = Omit<NodeLoadForecasterOptions, "stepMs">;

export function readRecording(file: string): RecordedLoad[] {
  const out: RecordedLoad[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as RecordedLoad);
    } catch {
      // A torn last line (the scheduler was killed mid-write) is skipped.
    }
  }
  return out;
}

export interface ReplayScore {
  /** Pooled ratio over the whole recording, as the live gauge would read at its end. */
  all: number;
  /** Pooled ratio of forecasts scored before / after the split time. */
  train: number;
  validation: number;
  scored: number;
  /** The scored entries behind each ratio (nodes × horizons), for pooling over recordings. */
  entries: { all: ScoredAccuracy[]; train: ScoredAccuracy[]; validation: ScoredAccuracy[] };
}

const sums = (f: NodeLoadForecaster): ScoredAccuracy[] => f.accuracy().map((a) => ({ count: a.count, modelMae: a.modelMae, naiveMae: a.naiveMae }));

/**
 * Replays every node's utilisation (clamped to 0..1, as placement feeds it) through a fresh
 * forecaster with `options`. `splitAt` (ms, the scheduler's clock): forecasts scored once a
 * sample at or after it has arrived count as validation; the train part never depends on them.
 */
/** The observation placement's load model gets from a recorded heartbeat. */
export const observationOf = (r: RecordedLoad): NodeLoadObservation => ({
  atMs: r.t,
  cpuUtilization: r.cpu,
  agentCpuUtilization: r.agentCpu,
  runningTasks: r.running,
  queuedTasks: r.queued,
});

/**
 * `stopAt` (exclusive): samples from then on are not replayed at all (live-tune.ts: the training part only).
 * `inputs`: the exogenous inputs given with each sample, as NodeLoadModel gives them (null: none).
 */
export function replayScore(
  records: readonly RecordedLoad[],
  stepMs: number,
  options: LiveForecasterOptions,
  splitAt: number,
  stopAt = Number.POSITIVE_INFINITY,
  inputs: UtilizationInputs | null = null,
): ReplayScore {
  const byNode = new Map<string, RecordedLoad[]>();
  for (const r of records) {
    if (r.t >= stopAt) continue;
    const list = byNode.get(r.node) ?? [];
    list.push(r);
    byNode.set(r.node, list);
  }
  const all: ScoredAccuracy[] = [];
  const train: ScoredAccuracy[] = [];
  const validation: ScoredAccuracy[] = [];
  for (const list of byNode.values()) {
    const f = new NodeLoadForecaster({ ...options, stepMs });
    let atSplit: ScoredAccuracy[] | undefined;
    for (const r of list) {
      if (atSplit === undefined && r.t >= splitAt) atSplit = sums(f);
      f.observe(r.t, Math.min(1, Math.max(0, r.cpu)), inputs?.(observationOf(r)));
    }
    const end = sums(f);
    atSplit ??= end;
    for (let k = 0; k < end.length; k++) {
      const e = end[k]!;
      const s = atSplit[k]!;
      all.push(e);
      train.push(s);
      const sumOf = (a: ScoredAccuracy, which: "modelMae" | "naiveMae") => (a.count > 0 ? a[which] * a.count : 0);
      const count = e.count - s.count;
      validation.push(
        count > 0
          ? { count, modelMae: (sumOf(e, "modelMae") - sumOf(s, "modelMae")) / count, naiveMae: (sumOf(e, "naiveMae") - sumOf(s, "naiveMae")) / count }
          : { count: 0, modelMae: Number.NaN, naiveMae: Number.NaN },
      );
    }
  }
  return { all: pooledErrorRatio(all), train: pooledErrorRatio(train), validation: pooledErrorRatio(validation), scored: all.reduce((n, e) => n + e.count, 0), entries: { all, train, validation } };
}

/** The time (scheduler clock) at `fraction` of the recording's span. */
export function splitTime(records: readonly RecordedLoad[], fraction: number): number {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const r of records) {
    lo = Math.min(lo, r.t);
    hi = Math.max(hi, r.t);
  }
  return lo + (hi - lo) * fraction;
}

/** The live forecaster's settings before the live choice (bench/forecast/live-tune.ts): the baseline. */
export const LIVE_PREVIOUS_FORECASTER: LiveForecasterOptions = {
  model: { historySteps: 240, refitEverySteps: 60, minFitSteps: 12 },
};

/**
 * This build's utilisation settings with the naive gate on (scheduler/forecast/naive-gate.ts), for
 * comparison on the same series: the gate setting that scored best among the gate candidates on
 * the shared series' training split (bench/forecast/chosen.json). Off in the scheduler: it scored
 * worse than no gate there and on the recordings (bench/results/forecast.md).
 */
export const LIVE_GATED_FORECASTER: LiveForecasterOptions = {
  model: { ...UTILIZATION_FORECASTER.model, gateHalfLifeSteps: 144, gateEnter: 1, gateExit: 1 },
};
