/**
 * NodeLoadForecaster: what the scheduler keeps per node (one per metric).
 *
 * - Samples arrive at irregular times; they are resampled onto a fixed step
 *   grid anchored at the first sample: step k covers (t0 + (k-1)*step, t0 + k*step]
 *   and its value is the mean of the samples in it. A step is complete when a
 *   later sample arrives, or at once when a sample lands exactly on its end.
 *   Missing steps are filled by linear interpolation; a gap longer than
 *   `maxGapSteps` resets the model (the old dynamics are stale).
 * - The completed steps feed a StepForecaster (auto-seasonal Holt-Winters in a
 *   small accuracy-selected ensemble; see model.ts).
 * - forecast(h).upper = mean + headroom, the headroom being a high percentile
 *   (default p95) of recent h-step forecast residuals kept in a decaying
 *   histogram (one per tracked horizon) - an Autopilot/VPA-style safety margin
 *   calibrated to how wrong this node's forecasts have recently been.
 * - accuracy() reports online MASE-style ratios per tracked horizon.
 * - Inputs given with a sample (exogenous, e.g. the node's task counts) are resampled the same
 *   way and feed the model's ARX member; interpolated steps have none.
 */
import { OnlineAccuracy } from "./accuracy.js";
import { DecayingHistogram } from "./decaying-histogram.js";
import { StepForecaster } from "./model.js";
import { type StepForecasterOptions, resolveStepForecasterOptions } from "./model-options.js";
import {
  ForecastOptionError,
  checkInt,
  checkKnownKeys,
  checkNumberList,
  checkPositive,
  checkRange,
} from "./options.js";

export interface NodeLoadForecasterOptions {
  /** Resampling step in ms (default 1000; use 300000 for 5-minute traces). */
  stepMs?: number;
  /** Horizons (ms, multiples of stepMs) that are fitted, tracked for accuracy and given headroom (default 1, 3, 6, 12 steps). */
  horizonsMs?: number[];
  /** Model options (fitHorizons is derived from horizonsMs and must not be given). */
  model?: Omit<StepForecasterOptions, "fitHorizons">;
  /** Quantile of the residual histogram used as headroom (default 0.95). */
  headroomQuantile?: number;
  /** Half-life of the residual and value histograms in ms (default 144 steps). */
  histogramHalfLifeMs?: number;
  /** Forecasts from the first this many steps are not scored by accuracy() (default 0). */
  accuracyWarmupSteps?: number;
  /** Longest gap (in steps) that is interpolated; longer gaps reset the model (default 60). */
  maxGapSteps?: number;
}

export interface Forecast {
  /** Point forecast (mean). */
  mean: number;
  /** mean + headroom (>= mean). */
  upper: number;
}

export interface AccuracyEntry {
  horizonMs: number;
  /** Forecasts scored so far. */
  count: number;
  modelMae: number;
  naiveMae: number;
  /** modelMae / naiveMae: below 1 beats the last-value forecast. */
  ratio: number;
}

export type ForecastBound = "mean" | "upper";

const KEYS = [
  "stepMs", "horizonsMs", "model", "headroomQuantile", "histogramHalfLifeMs", "accuracyWarmupSteps", "maxGapSteps",
] as const;

/** Minimum decayed residual weight before the residual histogram is trusted for headroom. */
const MIN_RESIDUAL_WEIGHT = 10;

export class NodeLoadForecaster {
  readonly stepMs: number;
  readonly horizonsMs: number[];
  readonly headroomQuantile: number;
  readonly maxGapSteps: number;
  private readonly horizonSteps: number[];
  private readonly modelOptions: StepForecasterOptions;
  private readonly histogramHalfLifeMs: number;
  private model: StepForecaster;
  private readonly acc: OnlineAccuracy;
  private readonly residuals: DecayingHistogram[];
  private readonly values: DecayingHistogram;
  // Pending forecasts for the residual histograms: [k][origin % ring].
  private readonly ring: number;
  private readonly pending: Float64Array[];
  private readonly pendingOrigin: Float64Array;
  // Resampling state.
  private t0: number | null = null;
  private lastSampleT = Number.NEGATIVE_INFINITY;
  private openIdx = -1;
  private openSum = 0;
  private openCount = 0;
  private openExog: Float64Array | null = null;
  private openExogCount = 0;
  private lastIdx = -1; // last completed step index (absolute, grid)
  private lastValue = Number.NaN;
  private steps = 0; // completed steps fed to the accuracy tracker (grid index space)
  private droppedSamples = 0;
  private resets = 0;

  constructor(options: NodeLoadForecasterOptions = {}) {
    const o = checkKnownKeys("options", options, KEYS);
    this.stepMs = o.stepMs === undefined ? 1000 : checkPositive("stepMs", o.stepMs);
    const defaultHorizons = [1, 3, 6, 12].map((k) => k * this.stepMs);
    this.horizonsMs =
      o.horizonsMs === undefined
        ? defaultHorizons
        : checkNumberList("horizonsMs", o.horizonsMs, (f, v) => checkPositive(f, v), { nonEmpty: true });
    this.horizonSteps = this.horizonsMs.map((h, i) => {
      const k = h / this.stepMs;
      if (Math.abs(k - Math.round(k)) > 1e-9) {
        throw new ForecastOptionError(`horizonsMs[${i}]`, `must be a multiple of stepMs (${this.stepMs}), got ${h}`);
      }
      return Math.round(k);
    });
    if (o.model !== undefined && typeof o.model === "object" && o.model !== null && "fitHorizons" in o.model) {
      throw new ForecastOptionError("model.fitHorizons", "is derived from horizonsMs; set horizonsMs instead");
    }
    this.modelOptions = { ...((o.model ?? {}) as StepForecasterOptions), fitHorizons: this.horizonSteps };
    resolveStepForecasterOptions(this.modelOptions, "model"); // validate with field names now
    this.headroomQuantile = o.headroomQuantile === undefined ? 0.95 : checkRange("headroomQuantile", o.headroomQuantile, 0.5, 1);
    this.histogramHalfLifeMs =
      o.histogramHalfLifeMs === undefined ? 144 * this.stepMs : checkPositive("histogramHalfLifeMs", o.histogramHalfLifeMs);
    this.maxGapSteps = o.maxGapSteps === undefined ? 60 : checkInt("maxGapSteps", o.maxGapSteps, 0);
    const warmup = o.accuracyWarmupSteps === undefined ? 0 : checkInt("accuracyWarmupSteps", o.accuracyWarmupSteps, 0);
    this.model = new StepForecaster(this.modelOptions);
    this.acc = new OnlineAccuracy(this.horizonSteps, warmup);
    this.residuals = this.horizonSteps.map(() => new DecayingHistogram({ halfLife: this.histogramHalfLifeMs }));
    this.values = new DecayingHistogram({ halfLife: this.histogramHalfLifeMs });
    this.ring = Math.max(...this.horizonSteps) + 1;
    this.pending = this.horizonSteps.map(() => new Float64Array(this.ring));
    this.pendingOrigin = new Float64Array(this.ring).fill(Number.NaN);
  }

  /** Adds a sample (with the inputs known with it, if any). Out-of-order samples (older than the newest) are dropped and counted. */
  observe(tMs: number, value: number, exogenous?: ArrayLike<number>): void {
    if (!Number.isFinite(tMs)) throw new RangeError(`sample time must be finite, got ${tMs}`);
    if (!Number.isFinite(value)) throw new RangeError(`sample value must be finite, got ${value}`);
    if (tMs < this.lastSampleT) {
      this.droppedSamples++;
      return;
    }
    this.lastSampleT = tMs;
    if (this.t0 === null) this.t0 = tMs;
    const pos = (tMs - this.t0) / this.stepMs;
    // A sample not older than the newest can only land in a closed step when it has the same time
    // as the sample that closed it at its exact end: it is folded into the next step, not lost.
    const idx = Math.max(this.lastIdx + 1, Math.ceil(pos - 1e-9));
    if (this.openIdx >= 0 && idx > this.openIdx) this.closeOpen();
    if (this.openIdx !== idx) {
      this.openIdx = idx;
      this.openSum = 0;
      this.openCount = 0;
      this.openExog = null;
      this.openExogCount = 0;
    }
    this.openSum += value;
    this.openCount++;
    if (exogenous !== undefined) {
      this.openExog ??= new Float64Array(exogenous.length);
      for (let j = 0; j < this.openExog.length; j++) this.openExog[j] = this.openExog[j]! + (exogenous[j] ?? Number.NaN);
      this.openExogCount++;
    }
    if (Math.abs(pos - idx) < 1e-9) this.closeOpen(); // exactly at the step's end
  }

  private closeOpen(): void {
    const idx = this.openIdx;
    const v = this.openSum / this.openCount;
    const x = this.openExog?.map((e) => e / this.openExogCount);
    this.openIdx = -1;
    if (this.lastIdx >= 0 && idx - this.lastIdx > 1) {
      const gap = idx - this.lastIdx - 1;
      if (gap > this.maxGapSteps) {
        this.resetModel();
      } else {
        for (let g = 1; g <= gap; g++) this.completeStep(this.lastValue + ((v - this.lastValue) * g) / (gap + 1));
      }
    }
    this.completeStep(v, x);
    this.lastIdx = idx;
  }

  private resetModel(): void {
    this.model = new StepForecaster(this.modelOptions);
    this.acc.clearPending();
    this.pendingOrigin.fill(Number.NaN);
    this.resets++;
  }

  private completeStep(y: number, exogenous?: ArrayLike<number>): void {
    const t = this.steps;
    const tMs = t * this.stepMs;
    this.acc.observe(t, y);
    for (let k = 0; k < this.horizonSteps.length; k++) {
      const origin = t - this.horizonSteps[k]!;
      if (origin < 0) continue;
      const slot = origin % this.ring;
      if (this.pendingOrigin[slot] !== origin) continue;
      this.residuals[k]!.add(y - this.pending[k]![slot]!, tMs);
    }
    this.values.add(y, tMs);
    this.model.observe(y, exogenous);
    this.lastValue = y;
    const f = this.horizonSteps.map((h) => this.model.forecast(h));
    this.acc.record(t, f, y);
    const slot = t % this.ring;
    this.pendingOrigin[slot] = t;
    for (let k = 0; k < f.length; k++) this.pending[k]![slot] = f[k]!;
    this.steps++;
  }

  /** Time (ms) of the newest completed step: forecasts are relative to it. null before any step. */
  get lastStepTimeMs(): number | null {
    return this.t0 === null || this.lastIdx < 0 ? null : this.t0 + this.lastIdx * this.stepMs;
  }

  /** Completed steps so far (including interpolated ones). */
  get completedSteps(): number {
    return this.steps;
  }

  /** Samples dropped because they were out of order. */
  get dropped(): number {
    return this.droppedSamples;
  }

  /** The q-quantile of recent (decaying) values, e.g. p95 utilisation. NaN before any step. */
  recentPercentile(q: number): number {
    return this.values.percentile(q);
  }

  private meanAt(hSteps: number): number {
    if (hSteps <= 0) return this.lastValue;
    const lo = Math.floor(hSteps);
    const hi = Math.ceil(hSteps);
    const fLo = lo === 0 ? this.lastValue : this.model.forecast(lo);
    if (hi === lo) return fLo;
    const fHi = this.model.forecast(hi);
    return fLo + (fHi - fLo) * (hSteps - lo);
  }

  /** Headroom (>= 0) for a horizon in steps: residual quantile, interpolated between tracked horizons. */
  private headroomAt(hSteps: number): number | null {
    const q = (k: number): number | null => {
      const hist = this.residuals[k]!;
      if (hist.weight() < MIN_RESIDUAL_WEIGHT) return null;
      return Math.max(0, hist.percentile(this.headroomQuantile));
    };
    const hs = this.horizonSteps;
    // Tracked horizons sorted ascending with their indices.
    const order = hs.map((h, k) => ({ h, k })).sort((a, b) => a.h - b.h);
    let lo: { h: number; k: number } | null = null;
    let hi: { h: number; k: number } | null = null;
    for (const e of order) {
      if (e.h <= hSteps) lo = e;
      if (e.h >= hSteps && hi === null) hi = e;
    }
    const qLo = lo ? q(lo.k) : null;
    const qHi = hi ? q(hi.k) : null;
    if (lo && hi && qLo !== null && qHi !== null) {
      return hi.h === lo.h ? qLo : qLo + ((qHi - qLo) * (hSteps - lo.h)) / (hi.h - lo.h);
    }
    return qHi ?? qLo;
  }

  /**
   * Forecast `horizonMs` after lastStepTimeMs: mean, and upper = mean + headroom
   * (p`headroomQuantile` of recent residuals at that horizon; until enough
   * residuals exist, upper = max(mean, recent p`headroomQuantile` of values)).
   * NaN before the first completed step.
   */
  forecast(horizonMs: number): Forecast {
    if (!(horizonMs >= 0) || !Number.isFinite(horizonMs)) throw new RangeError(`horizonMs must be a finite number >= 0, got ${horizonMs}`);
    if (this.steps === 0) return { mean: Number.NaN, upper: Number.NaN };
    const h = horizonMs / this.stepMs;
    const mean = this.meanAt(h);
    if (h === 0) return { mean, upper: mean };
    const head = this.headroomAt(h);
    const upper = head === null ? Math.max(mean, this.values.percentile(this.headroomQuantile)) : mean + head;
    return { mean, upper };
  }

  /**
   * Earliest time (absolute ms, on the same clock as observe()) within
   * `horizonMs` after lastStepTimeMs at which the chosen forecast bound
   * ("mean" by default, or "upper" for the conservative, headroom-inclusive
   * bound) reaches `threshold`; linear interpolation between steps. Returns
   * lastStepTimeMs if the latest value is already at or above the threshold,
   * and null if there is no crossing within the horizon or no data yet.
   */
  saturationEta(threshold: number, horizonMs: number, bound: ForecastBound = "mean"): number | null {
    if (!Number.isFinite(threshold)) throw new RangeError(`threshold must be finite, got ${threshold}`);
    if (!(horizonMs >= 0) || !Number.isFinite(horizonMs)) throw new RangeError(`horizonMs must be a finite number >= 0, got ${horizonMs}`);
    if (bound !== "mean" && bound !== "upper") throw new RangeError(`bound must be "mean" or "upper", got ${String(bound)}`);
    const base = this.lastStepTimeMs;
    if (base === null) return null;
    if (this.lastValue >= threshold) return base;
    const maxSteps = horizonMs / this.stepMs;
    const at = (h: number): number => {
      const f = this.forecast(h * this.stepMs);
      return bound === "mean" ? f.mean : f.upper;
    };
    let prevH = 0;
    let prevV = this.lastValue;
    const whole = Math.floor(maxSteps);
    const points: number[] = [];
    for (let k = 1; k <= whole; k++) points.push(k);
    if (maxSteps > whole) points.push(maxSteps);
    for (const h of points) {
      const v = at(h);
      if (v >= threshold) {
        const frac = v === prevV ? 1 : (threshold - prevV) / (v - prevV);
        return base + (prevH + Math.min(1, Math.max(0, frac)) * (h - prevH)) * this.stepMs;
      }
      prevH = h;
      prevV = v;
    }
    return null;
  }

  /** Online accuracy per tracked horizon (ratio < 1: better than the last-value forecast). */
  accuracy(): AccuracyEntry[] {
    return this.acc.results().map((r, k) => ({
      horizonMs: this.horizonsMs[k]!,
      count: r.count,
      modelMae: r.modelMae,
      naiveMae: r.naiveMae,
      ratio: r.ratio,
    }));
  }

  /** Diagnostic view of the model (period, fitted parameters, ensemble selection). */
  describe(): ReturnType<StepForecaster["describe"]> & { resets: number; dropped: number; stepMs: number } {
    return { ...this.model.describe(), resets: this.resets, dropped: this.droppedSamples, stepMs: this.stepMs };
  }
}
