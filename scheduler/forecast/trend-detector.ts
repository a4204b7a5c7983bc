/**
 * Saturation trend detector for 1 s heartbeats (issue #14).
 *
 * The step forecaster is built for 5-minute series; on heartbeats it either misses fast ramps
 * (mean bound) or alarms on every wobble (upper bound). This detector asks a narrower question:
 * is the load rising *significantly* and, at that rate, will it reach the threshold within the
 * horizon? It fits a least-squares line to the last `windowSteps` samples and compares its slope
 * with the node's own history of window slopes: the median |slope| of the last `scaleSteps`
 * windows (a robust MAD, since slopes centre on 0 on a node without trend). A hard memory rather
 * than a decaying one: a start-up burst (an agent's first samples swing 0-100 %) leaves the scale
 * once it has left the memory, and cannot set it while it is less than half of it (issue #14: a
 * decaying median seeded by it still masked a ramp 40 samples later). A slope well beyond the
 * noise (`freezeT` scales) is left out of that memory (for at most half of it in a row), so a ramp does not
 * widen the scale while its prediction forms. Node load wobbles with autocorrelation, so a
 * residual-based standard error would call every wobble significant; the slope history already
 * contains that wobble. A crossing is predicted only when
 *   t = slope / (1.4826 · MAD of past slopes) >= minT   and   the line reaches the threshold within the horizon.
 * A step to a new level is not a trend: when one step's change in the window is more than
 * `jumpRatio` times every other step's, the window is cut there and only the samples after it are
 * fitted (at least `minAfterJump` of them, the scale widened for the shorter fit). A rise spread
 * over several steps (a ramp) has no such dominant step and keeps the whole window.
 * It holds no state beyond the window and the noise estimate, so the prediction ends on the
 * first sample where the condition fails (resolution within one step).
 */
export interface TrendDetectorOptions {
  /** Samples in the slope window (default 6, chosen on the training split of bench/alerts). */
  windowSteps?: number;
  /** Minimum slope / robust slope scale (default 6, chosen on the training split). */
  minT?: number;
  /** Minimum slope per step (default 0.005): a drift slower than that is not a ramp. */
  minSlope?: number;
  /** A slope this many scales from 0 is left out of the scale (default 3, chosen on the training split: noise rarely gets there, a ramp about to be predicted does). */
  freezeT?: number;
  /**
   * Quantile of the remembered |slopes| taken as the scale, rescaled to a median's for normal slopes
   * (default 0.5, the median). A lower one stays on the node's calm windows while more of the memory
   * is start-up or ramp (breakdown 1 - q rather than 1/2), at the cost of a noisier scale.
   */
  scaleQuantile?: number;
  /** Past window slopes whose median |slope| is the noise scale (default 64, chosen on the training split of bench/alerts). */
  scaleSteps?: number;
  /** A step whose |change| exceeds this many times every other step's in the window is a level shift (default 2). */
  jumpRatio?: number;
  /** Samples after a level shift needed before a trend is judged on them (default 2; both chosen on the training split of bench/alerts). */
  minAfterJump?: number;
}

const MAD_TO_SD = 1.4826;

/** Defaults for 1 s heartbeats, chosen on the training split of bench/alerts (trend-tune.ts; bench/results/alerts.md). */
const DEFAULTS = { windowSteps: 6, minT: 6, minSlope: 0.005, scaleSteps: 64, freezeT: 3, scaleQuantile: 0.5, jumpRatio: 2, minAfterJump: 2 };

/**
 * Options for heartbeats every `stepMs`. The defaults were chosen on 1 s steps; a ramp is a span
 * of seconds, not of samples, so the window, the scale's memory, the samples needed after a level
 * shift and the minimum slope keep their span in time. (At 500 ms an 8-sample window sees 4 s of a
 * ramp rising half as much per sample: the solo e2e's 20 s ramp scaled to about 5 against minT 6.)
 */
export function trendOptionsForStep(stepMs: number): TrendDetectorOptions {
  if (!(stepMs > 0)) throw new RangeError(`trend stepMs must be > 0, got ${stepMs}`);
  const k = 1000 / stepMs;
  return {
    windowSteps: Math.max(3, Math.round(DEFAULTS.windowSteps * k)),
    scaleSteps: Math.max(1, Math.round(DEFAULTS.scaleSteps * k)),
    minAfterJump: Math.max(2, Math.round(DEFAULTS.minAfterJump * k)),
    minSlope: DEFAULTS.minSlope / k,
  };
}

export class TrendDetector {
  readonly windowSteps: number;
  readonly minT: number;
  readonly minSlope: number;
  readonly scaleSteps: number;
  readonly freezeT: number;
  readonly scaleQuantile: number;
  /** Turns the chosen quantile of |slope| into a median's (1 for the median). */
  private readonly toMedian: number;
  readonly jumpRatio: number;
  readonly minAfterJump: number;
  private readonly t: number[] = [];
  private readonly v: number[] = [];
  /** The last `scaleSteps` |window slopes|, oldest first, and the same sorted (for the median). */
  private readonly past: number[] = [];
  private readonly pastSorted: number[] = [];
  /** Significant slopes left out of the scale in a row. */
  private skipped = 0;
  private slope = Number.NaN;
  private seen = 0;

  constructor(options: TrendDetectorOptions = {}) {
    this.windowSteps = options.windowSteps ?? DEFAULTS.windowSteps;
    this.minT = options.minT ?? DEFAULTS.minT;
    this.minSlope = options.minSlope ?? DEFAULTS.minSlope;
    this.scaleSteps = options.scaleSteps ?? DEFAULTS.scaleSteps;
    this.freezeT = options.freezeT ?? DEFAULTS.freezeT;
    this.scaleQuantile = options.scaleQuantile ?? DEFAULTS.scaleQuantile;
    if (!(this.scaleQuantile > 0 && this.scaleQuantile < 1)) throw new RangeError(`trend scaleQuantile must be in (0, 1), got ${this.scaleQuantile}`);
    // |N(0, s)| has its q-quantile at s·Φ⁻¹((1+q)/2).
    this.toMedian = normalQuantile(0.75) / normalQuantile((1 + this.scaleQuantile) / 2);
    this.jumpRatio = options.jumpRatio ?? DEFAULTS.jumpRatio;
    this.minAfterJump = options.minAfterJump ?? DEFAULTS.minAfterJump;
    if (!Number.isInteger(this.windowSteps) || this.windowSteps < 3) throw new RangeError(`trend windowSteps must be an integer >= 3, got ${this.windowSteps}`);
    if (!(this.minT > 0)) throw new RangeError(`trend minT must be > 0, got ${this.minT}`);
    if (!(this.minSlope >= 0)) throw new RangeError(`trend minSlope must be >= 0, got ${this.minSlope}`);
    if (!(this.freezeT > 0)) throw new RangeError(`trend freezeT must be > 0, got ${this.freezeT}`);
    if (!Number.isInteger(this.scaleSteps) || this.scaleSteps < 1) throw new RangeError(`trend scaleSteps must be an integer >= 1, got ${this.scaleSteps}`);
    if (!(this.jumpRatio >= 1)) throw new RangeError(`trend jumpRatio must be >= 1, got ${this.jumpRatio}`);
    if (!Number.isInteger(this.minAfterJump) || this.minAfterJump < 2) throw new RangeError(`trend minAfterJump must be an integer >= 2, got ${this.minAfterJump}`);
  }

  get samples(): number {
    return this.seen;
  }

  observe(tMs: number, value: number): void {
    if (!Number.isFinite(value) || !Number.isFinite(tMs)) return;
    this.t.push(tMs);
    this.v.push(value);
    if (this.t.length > this.windowSteps) {
      this.t.shift();
      this.v.shift();
    }
    this.seen++;
    // The current slope is judged against the past ones: update the scale after reading it.
    const prev = this.slope;
    this.slope = this.fitSlope();
    // Start-up is not the node's noise (an agent's first samples swing 0-100 %): the scale learns
    // from windows that start after the first window's worth of samples.
    if (Number.isFinite(prev) && this.seen > 2 * this.windowSteps) this.remember(Math.abs(prev));
  }

  private remember(d: number): void {
    // A slope beyond `freezeT` scales is a trend forming, not noise: left out, the ramp cannot raise
    // the scale it is judged by. Only for half a memory in a row, so a node whose wobble really
    // grew still gets a scale that matches it.
    const mad = this.slopeMad();
    if (d >= this.freezeT * MAD_TO_SD * mad && this.skipped < this.scaleSteps / 2) {
      this.skipped++;
      return;
    }
    this.skipped = 0;
    this.past.push(d);
    this.pastSorted.splice(lowerBound(this.pastSorted, d), 0, d);
    if (this.past.length > this.scaleSteps) this.pastSorted.splice(lowerBound(this.pastSorted, this.past.shift()!), 1);
  }

  /** Median |slope| of the remembered windows, or its estimate from the chosen quantile (NaN before the first). */
  private slopeMad(): number {
    const s = this.pastSorted;
    const n = s.length;
    if (n === 0) return Number.NaN;
    const at = this.scaleQuantile * (n - 1);
    const lo = Math.floor(at);
    const q = s[lo]! + (at - lo) * ((s[Math.min(lo + 1, n - 1)] ?? s[lo]!) - s[lo]!);
    return q * this.toMedian;
  }

  /** Least-squares slope (per step) of the window, NaN until it is full. */
  private fitSlope(): number {
    const n = this.t.length;
    return n < this.windowSteps ? Number.NaN : fit(this.v, 0).slope;
  }

  /**
   * Index where the window's samples after a level shift start (the step's change dominates every
   * other step's), or 0 when there is none.
   */
  private levelShiftStart(): number {
    const v = this.v;
    let big = -1;
    let top = 0;
    let second = 0;
    for (let i = 1; i < v.length; i++) {
      const d = Math.abs(v[i]! - v[i - 1]!);
      if (d > top) {
        second = top;
        top = d;
        big = i;
      } else if (d > second) second = d;
    }
    return big > 0 && top > this.jumpRatio * second ? big : 0;
  }

  /**
   * Absolute time (ms) at which the fitted line reaches `threshold`, if the slope is significant
   * and the crossing lies within `horizonMs` of the last sample; null otherwise (also when the
   * last sample is already at or over the threshold: that is saturation, not a prediction).
   */
  crossingAt(threshold: number, horizonMs: number): number | null {
    const n = this.t.length;
    // The scale needs some history of slopes before it means anything.
    const mad = this.slopeMad();
    if (n < this.windowSteps || !Number.isFinite(mad) || this.seen < 3 * this.windowSteps) return null;
    const last = this.v[n - 1]!;
    if (last >= threshold) return null;
    const from = this.levelShiftStart();
    if (n - from < this.minAfterJump) return null;
    const f = fit(this.v, from);
    const slope = f.slope; // per step (heartbeats are evenly spaced)
    if (!(slope >= this.minSlope)) return null;
    // Past slopes include this one's predecessors only (updated in observe after reading); a fit on
    // fewer samples varies more (the slope's spread goes as 1/sqrt(sxx)), so its scale is widened.
    const widen = Math.sqrt(fullSxx(n) / f.sxx);
    const tStat = slope / Math.max(mad * MAD_TO_SD * widen, 1e-4);
    if (tStat < this.minT) return null;
    const stepMs = (this.t[n - 1]! - this.t[0]!) / (n - 1);
    // Extrapolate from the fitted level now, but never from below the last sample.
    const level = Math.max(f.levelNow, last);
    const etaMs = ((threshold - level) / slope) * stepMs;
    if (etaMs > horizonMs) return null;
    return this.t[n - 1]! + Math.max(0, etaMs);
  }
}

/** Φ⁻¹(p) of the standard normal, by bisection on Φ (erf of Abramowitz & Stegun 7.1.26, |error| < 1.5e-7). */
function normalQuantile(p: number): number {
  const erf = (x: number) => {
    const t = 1 / (1 + 0.3275911 * Math.abs(x));
    const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
    return x < 0 ? -y : y;
  };
  let lo = -10;
  let hi = 10;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (0.5 * (1 + erf(mid / Math.SQRT2)) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** First index in sorted `a` whose value is >= x. */
function lowerBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const fullSxx = (n: number) => ((n - 1) * n * (n + 1)) / 12;

/** Least-squares line through v[from..]: its slope per step, sum of squares of x, and its value at the last sample. */
function fit(v: readonly number[], from: number): { slope: number; sxx: number; levelNow: number } {
  const n = v.length - from;
  const mt = (n - 1) / 2;
  let mv = 0;
  for (let i = from; i < v.length; i++) mv += v[i]!;
  mv /= n;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (i - mt) ** 2;
    sxy += (i - mt) * (v[from + i]! - mv);
  }
  const slope = sxy / sxx;
  return { slope, sxx, levelNow: mv + slope * mt };
}
