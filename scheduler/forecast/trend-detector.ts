/**
 * Saturation trend detector for 1 s heartbeats (issue #14).
 *
 * The step forecaster is built for 5-minute series; on heartbeats it either misses fast ramps
 * (mean bound) or alarms on every wobble (upper bound). This detector asks a narrower question:
 * is the load rising *significantly* and, at that rate, will it reach the threshold within the
 * horizon? It fits a least-squares line to the last `windowSteps` samples and compares its slope
 * with the node's own history of window slopes: a decaying median of |slope| (a robust MAD, since
 * slopes centre on 0 on a node without trend). Node load wobbles with autocorrelation, so a
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
  /** Samples in the slope window (default 8, chosen on the training split of bench/alerts). */
  windowSteps?: number;
  /** Minimum slope / robust slope scale (default 6, chosen on the training split). */
  minT?: number;
  /** Minimum slope per step (default 0.005): a drift slower than that is not a ramp. */
  minSlope?: number;
  /** Relative step of the decaying median of |slope| per sample (default 0.02). */
  noiseAlpha?: number;
  /** A step whose |change| exceeds this many times every other step's in the window is a level shift (default 2). */
  jumpRatio?: number;
  /** Samples after a level shift needed before a trend is judged on them (default 2; both chosen on the training split of bench/alerts). */
  minAfterJump?: number;
}

const MAD_TO_SD = 1.4826;

export class TrendDetector {
  readonly windowSteps: number;
  readonly minT: number;
  readonly minSlope: number;
  readonly noiseAlpha: number;
  readonly jumpRatio: number;
  readonly minAfterJump: number;
  private readonly t: number[] = [];
  private readonly v: number[] = [];
  /** Decaying median of |window slope| per step (updated by a sign step, so a ramp moves it little). */
  private slopeMad = Number.NaN;
  private slope = Number.NaN;
  private seen = 0;

  constructor(options: TrendDetectorOptions = {}) {
    this.windowSteps = options.windowSteps ?? 8;
    this.minT = options.minT ?? 6;
    this.minSlope = options.minSlope ?? 0.005;
    this.noiseAlpha = options.noiseAlpha ?? 0.02;
    this.jumpRatio = options.jumpRatio ?? 2;
    this.minAfterJump = options.minAfterJump ?? 2;
    if (!Number.isInteger(this.windowSteps) || this.windowSteps < 3) throw new RangeError(`trend windowSteps must be an integer >= 3, got ${this.windowSteps}`);
    if (!(this.minT > 0)) throw new RangeError(`trend minT must be > 0, got ${this.minT}`);
    if (!(this.minSlope >= 0)) throw new RangeError(`trend minSlope must be >= 0, got ${this.minSlope}`);
    if (!(this.noiseAlpha > 0 && this.noiseAlpha <= 1)) throw new RangeError(`trend noiseAlpha must be in (0, 1], got ${this.noiseAlpha}`);
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
    if (Number.isFinite(prev)) {
      const d = Math.abs(prev);
      if (!Number.isFinite(this.slopeMad)) this.slopeMad = Math.max(d, 1e-4);
      else this.slopeMad += this.noiseAlpha * Math.max(this.slopeMad, 1e-4) * (d > this.slopeMad ? 1 : -1);
    }
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
    if (n < this.windowSteps || !Number.isFinite(this.slopeMad) || this.seen < 3 * this.windowSteps) return null;
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
    const tStat = slope / Math.max(this.slopeMad * MAD_TO_SD * widen, 1e-4);
    if (tStat < this.minT) return null;
    const stepMs = (this.t[n - 1]! - this.t[0]!) / (n - 1);
    // Extrapolate from the fitted level now, but never from below the last sample.
    const level = Math.max(f.levelNow, last);
    const etaMs = ((threshold - level) / slope) * stepMs;
    if (etaMs > horizonMs) return null;
    return this.t[n - 1]! + Math.max(0, etaMs);
  }
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
