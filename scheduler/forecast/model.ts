/**
 * StepForecaster: the per-series forecasting model on a regular step grid.
 *
 * It keeps a bounded history, periodically (every `refitEverySteps`)
 *   1. detects a short season from the autocorrelation of the history,
 *   2. fits additive (damped) Holt-Winters - or Holt / SES when no season is
 *      significant - by a grid search minimising the mean of the h-step MAE
 *      relative to the naive forecast over `fitHorizons`,
 * and between refits updates the Holt-Winters state in O(1) per step.
 *
 * With `ensemble` on, it also runs the last-value naive and (when a season is
 * known) the seasonal-naive forecasts, tracks the exponentially weighted MAE
 * of every member at every tracked horizon, and answers each horizon with the
 * member that has been most accurate recently at that horizon (Holt-Winters
 * unless another member is clearly better). This protects the forecaster on
 * series where smoothing does not pay (e.g. on/off bursty load). Inputs passed with each
 * observation (exogenous: what the owner knows besides the series) feed one more member, a
 * direct ARX (arx-member.ts); without them it never answers.
 */
import {
  DEFAULT_GRID,
  type FitGrid,
  type HoltWintersConfig,
  type HoltWintersParams,
  type HoltWintersState,
  fitHoltWinters,
  hwForecast,
  hwUpdate,
} from "./holt-winters.js";
import { ExogenousMember } from "./arx-member.js";
import { type DirectArModel, fitDirectAr, interpolatedForecast } from "./direct-ar.js";
import { type ResolvedStepForecasterOptions, type StepForecasterOptions, resolveStepForecasterOptions } from "./model-options.js";
import { NaiveGate } from "./naive-gate.js";
import { detectPeriod } from "./period.js";

/** Ensemble members. */
export type MemberName = "holt-winters" | "naive" | "seasonal-naive" | "hw-naive-mean" | "direct-ar" | "direct-arx";
const MEMBERS: readonly MemberName[] = ["holt-winters", "naive", "seasonal-naive", "hw-naive-mean", "direct-ar", "direct-arx"];
const SEASONAL_NAIVE = MEMBERS.indexOf("seasonal-naive");
/** Relative loss reduction a season must bring over the non-seasonal fit to be kept. */
const SEASON_GAIN = 0.02;
/** Decayed scored forecasts the naive gate needs before it opens or closes. */
const GATE_MIN_WEIGHT = 10;
/** Lags of the direct autoregression member. */
const AR_LAGS = 12;

export interface ModelDescription {
  period: number | null;
  params: HoltWintersParams | null;
  fitLoss: number | null;
  fits: number;
  /** Level shifts taken by Holt-Winters on new observations (refits replaying the history not counted). */
  levelShifts: number;
  /** Member currently answering each tracked horizon ("naive" while the naive gate is closed there). */
  selection: { horizon: number; member: MemberName }[];
  /** Naive gate openings and closings (0 with the gate off). */
  gateSwitches: number;
}

export class StepForecaster {
  readonly options: ResolvedStepForecasterOptions;
  private readonly hist: Float64Array;
  private count = 0; // total observations
  private sinceFit = 0;
  private fits = 0;
  private levelShifts = 0;
  private period: number | null = null;
  private params: HoltWintersParams | null = null;
  private state: HoltWintersState | null = null;
  private fitLoss: number | null = null;
  private ar: DirectArModel[] = [];
  private readonly arx: ExogenousMember;
  private readonly cfg: HoltWintersConfig;
  private readonly grid: FitGrid;
  // Ensemble bookkeeping: pending[m][k][origin % ring] and EW error sums.
  private readonly ring: number;
  private readonly pending: Float64Array[][];
  private readonly errSum: Float64Array[]; // [member][k]
  private readonly errW: Float64Array[];
  private readonly decay: number;
  private readonly gate: NaiveGate | null;

  constructor(options?: StepForecasterOptions) {
    this.options = resolveStepForecasterOptions(options);
    this.hist = new Float64Array(this.options.historySteps);
    this.cfg = { robustK: this.options.robustK, scaleAlpha: 0.05, shiftK: this.options.shiftK, shiftRun: this.options.shiftRun };
    this.grid = this.options.damped ? DEFAULT_GRID : { ...DEFAULT_GRID, phi: [1] };
    const maxH = Math.max(...this.options.fitHorizons);
    this.ring = maxH + 1;
    this.pending = MEMBERS.map(() => this.options.fitHorizons.map(() => new Float64Array(this.ring).fill(Number.NaN)));
    this.errSum = MEMBERS.map(() => new Float64Array(this.options.fitHorizons.length));
    this.errW = MEMBERS.map(() => new Float64Array(this.options.fitHorizons.length));
    this.decay = Math.pow(0.5, 1 / this.options.selectionHalfLifeSteps);
    const o = this.options;
    this.arx = new ExogenousMember(o.arxLags, o.historySteps, o.arxInputs);
    this.gate =
      o.gateHalfLifeSteps > 0
        ? new NaiveGate(o.fitHorizons, { halfLifeSteps: o.gateHalfLifeSteps, enter: o.gateEnter, exit: o.gateExit, minWeight: GATE_MIN_WEIGHT })
        : null;
  }

  private get maxHorizon(): number {
    return Math.max(...this.options.fitHorizons);
  }

  /** Number of observations seen. */
  get observations(): number {
    return this.count;
  }

  /** Last observed value (NaN before the first). */
  get lastValue(): number {
    return this.count > 0 ? this.at(this.count - 1) : Number.NaN;
  }

  /** Observation with absolute index i (must be within the kept history). */
  private at(i: number): number {
    return this.hist[i % this.hist.length]!;
  }

  /** The kept history, oldest first. */
  history(): Float64Array {
    const n = Math.min(this.count, this.hist.length);
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = this.at(this.count - n + i);
    return out;
  }

  /** Adds the next step's value, with the exogenous inputs known at that step if the owner has any. */
  observe(y: number, exogenous?: ArrayLike<number>): void {
    if (!Number.isFinite(y)) throw new RangeError(`observation must be finite, got ${y}`);
    // Score the ensemble members' earlier forecasts that target this step.
    if (this.options.ensemble) this.scoreMembers(y);
    this.gate?.observe(this.count, y);
    this.hist[this.count % this.hist.length] = y;
    this.arx.push(this.count, exogenous);
    this.count++;
    this.sinceFit++;
    if (this.state && this.params) {
      const shifts = this.state.shifts;
      hwUpdate(this.state, this.params, this.cfg, y);
      this.levelShifts += this.state.shifts - shifts;
    }
    const n = Math.min(this.count, this.hist.length);
    if (n >= this.options.minFitSteps && (this.state === null || this.sinceFit >= this.options.refitEverySteps)) this.refit();
    if (this.options.ensemble) this.recordMembers();
    // The gate scores the ungated answer, so it keeps learning while it answers with naive.
    this.gate?.record(this.count - 1, this.options.fitHorizons.map((h) => this.ungated(h)), y);
  }

  /** Forces a refit now (period detection + parameter fit). */
  refit(): void {
    const h = this.history();
    if (h.length < this.options.minFitSteps) return;
    const o = this.options;
    // Candidate periods: none, plus (auto) the detected period and the next
    // strongest ACF peaks, or (fixed) the configured period. The fit decides:
    // a season is kept only if it lowers the multi-step loss by `seasonGain`.
    const periods: number[] = [];
    if (o.seasonality === "auto") {
      const det = detectPeriod(h, { ...o.period, maxPeriod: Math.min(o.period.maxPeriod ?? Infinity, Math.floor(h.length / 2)) });
      if (det.period !== null) periods.push(det.period);
      for (const c of det.candidates) {
        if (periods.length >= 3) break;
        if (!periods.includes(c.lag)) periods.push(c.lag);
      }
    } else if (typeof o.seasonality === "number" && h.length >= 2 * o.seasonality) {
      periods.push(o.seasonality);
    }
    const burnInFor = (p: number): number => Math.min(Math.floor(h.length / 4), 2 * p + 12);
    const maxP = periods.length > 0 ? Math.max(...periods) : 0;
    const burnIn = burnInFor(maxP); // same scoring window for every candidate
    let fit = fitHoltWinters(h, 0, this.grid, this.cfg, o.fitHorizons, burnIn);
    let period: number | null = null;
    for (const p of periods) {
      const f = fitHoltWinters(h, p, this.grid, this.cfg, o.fitHorizons, burnIn);
      if (f.loss < fit.loss * (period === null ? 1 - SEASON_GAIN : 1)) {
        fit = f;
        period = p;
      }
    }
    // The seasonal-naive member's record belongs to the old season: without a season it cannot
    // answer, and with another it is a different forecast. Its stale (often low) error would keep
    // it selected for hundreds of steps, so it starts over.
    if (period !== this.period) this.forgetMember(SEASONAL_NAIVE);
    this.period = period;
    this.params = fit.params;
    this.ar = [];
    if (o.ensemble) {
      for (const hz of o.fitHorizons) {
        const m = fitDirectAr(h, hz, AR_LAGS, period ?? 0);
        if (m) this.ar.push(m);
      }
      this.arx.refit(h, this.count - h.length, o.fitHorizons);
    }
    this.fitLoss = fit.loss;
    // The fitted state's season is indexed by position in `h`; re-anchor to absolute indices.
    const s = fit.state;
    const offset = this.count - h.length; // absolute index of h[0]
    if (s.period > 0) {
      const season = new Float64Array(s.period);
      for (let i = 0; i < s.period; i++) season[(i + offset) % s.period] = s.season[i]!;
      s.season = season;
    }
    s.pos = this.count;
    this.state = s;
    this.sinceFit = 0;
    this.fits++;
  }

  private forgetMember(m: number): void {
    this.errSum[m]!.fill(0);
    this.errW[m]!.fill(0);
    for (const ring of this.pending[m]!) ring.fill(Number.NaN);
  }

  private memberForecast(m: number, h: number): number {
    const last = this.lastValue;
    if (m === 0) return this.state && this.params ? hwForecast(this.state, this.params, h) : last;
    if (m === 1) return last;
    if (m === 3) return this.state && this.params ? (hwForecast(this.state, this.params, h) + last) / 2 : last;
    if (m === 4) return this.arForecast(h);
    if (m === 5) return this.arx.forecast(h, (i) => this.at(i), Math.max(0, this.count - this.hist.length), this.count - 1);
    const p = this.period;
    if (p === null) return Number.NaN;
    const back = p * Math.ceil(h / p); // same phase, at or before now
    const idx = this.count - 1 + h - back;
    if (idx < 0 || idx < this.count - this.hist.length) return Number.NaN;
    return this.at(idx);
  }

  /** Direct AR forecast; between fitted horizons, linear interpolation (h = 0 is the last value). */
  private arForecast(h: number): number {
    const first = Math.max(0, this.count - this.hist.length);
    return interpolatedForecast(this.ar, h, (i) => this.at(i), first, this.count - 1);
  }

  private recordMembers(): void {
    const origin = this.count - 1;
    const hs = this.options.fitHorizons;
    for (let m = 0; m < MEMBERS.length; m++) {
      for (let k = 0; k < hs.length; k++) this.pending[m]![k]![origin % this.ring] = this.memberForecast(m, hs[k]!);
    }
  }

  private scoreMembers(y: number): void {
    const target = this.count; // index this observation will get
    const hs = this.options.fitHorizons;
    for (let k = 0; k < hs.length; k++) {
      const origin = target - hs[k]!;
      if (origin < 0) continue;
      for (let m = 0; m < MEMBERS.length; m++) {
        const f = this.pending[m]![k]![origin % this.ring]!;
        const es = this.errSum[m]!, ew = this.errW[m]!;
        es[k] = es[k]! * this.decay;
        ew[k] = ew[k]! * this.decay;
        if (!Number.isNaN(f)) {
          es[k]! += Math.abs(y - f);
          ew[k]! += 1;
        }
      }
    }
  }

  /** Index of the tracked horizon nearest to `h` (ties go to the longer one). */
  private nearest(h: number): number {
    const hs = this.options.fitHorizons;
    let k = 0;
    for (let i = 1; i < hs.length; i++) {
      if (Math.abs(hs[i]! - h) <= Math.abs(hs[k]! - h)) k = i;
    }
    return k;
  }

  /** The naive gate is closed at the tracked horizon nearest to `h`: the last value answers. */
  private gated(h: number): boolean {
    return this.gate !== null && !this.gate.useModel(this.nearest(h));
  }

  private selectMember(h: number): number {
    if (!this.options.ensemble) return 0;
    const k = this.nearest(h);
    const mae = (m: number): number => {
      const w = this.errW[m]![k]!;
      return w >= 1 ? this.errSum[m]![k]! / w : Number.POSITIVE_INFINITY;
    };
    const base = mae(0);
    let best = 0;
    let bestMae = base * (1 - this.options.selectionMargin);
    for (let m = 1; m < MEMBERS.length; m++) {
      const e = mae(m);
      // A member that cannot answer now (no season, no AR fit) is not chosen: forecast() would
      // fall back to Holt-Winters while describe() named it.
      if (e < bestMae && !Number.isNaN(this.memberForecast(m, h))) {
        best = m;
        bestMae = e;
      }
    }
    return best;
  }

  /** Point forecast `h` steps (integer >= 1) after the last observation; NaN before any observation. */
  forecast(h: number): number {
    if (this.count > 0 && this.gated(h)) return this.lastValue;
    return this.ungated(h);
  }

  /** The ensemble's answer, before the naive gate. */
  private ungated(h: number): number {
    if (this.count === 0) return Number.NaN;
    if (!this.state || !this.params) return this.lastValue;
    const maxH = this.maxHorizon;
    if (h > maxH) {
      // Beyond the tracked horizons: continue from the selected member's forecast
      // at the longest tracked horizon along the Holt-Winters path.
      return this.ungated(maxH) + hwForecast(this.state, this.params, h) - hwForecast(this.state, this.params, maxH);
    }
    const m = this.selectMember(h);
    const f = this.memberForecast(m, h);
    return Number.isNaN(f) ? hwForecast(this.state, this.params, h) : f;
  }

  describe(): ModelDescription {
    return {
      period: this.period,
      params: this.params ? { ...this.params } : null,
      fitLoss: this.fitLoss,
      fits: this.fits,
      levelShifts: this.levelShifts,
      selection: this.options.fitHorizons.map((h) => ({ horizon: h, member: this.gated(h) ? "naive" : MEMBERS[this.selectMember(h)]! })),
      gateSwitches: this.gate?.switches ?? 0,
    };
  }
}
