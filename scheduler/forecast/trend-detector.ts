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
}

const MAD_TO_SD = 1.4826;

export class TrendDetector {
  readonly windowSteps: number;
  readonly minT: number;
  readonly minSlope: number;
  readonly noiseAlpha: number;
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
    if (!Number.isInteger(this.windowSteps) || this.windowSteps < 3) throw new RangeError(`trend windowSteps must be an integer >= 3, got ${this.windowSteps}`);
    if (!(this.minT > 0)) throw new RangeError(`trend minT must be > 0, got ${this.minT}`);
    if (!(this.minSlope >= 0)) throw new RangeError(`trend minSlope must be >= 0, got ${this.minSlope}`);
    if (!(this.noiseAlpha > 0 && this.noiseAlpha <= 1)) throw new RangeError(`trend noiseAlpha must be in (0, 1], got ${this.noiseAlpha}`);
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
    if (n < this.windowSteps) return Number.NaN;
    const mt = (n - 1) / 2;
    let mv = 0;
    for (const x of this.v) mv += x;
    mv /= n;
    let sxx = 0;
    let sxy = 0;
    for (let i = 0; i < n; i++) {
      sxx += (i - mt) ** 2;
      sxy += (i - mt) * (this.v[i]! - mv);
    }
    return sxy / sxx;
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
    const slope = this.slope; // per step (heartbeats are evenly spaced)
    if (!(slope >= this.minSlope)) return null;
    // Past slopes include this one's predecessors only (updated in observe after reading).
    const tStat = slope / Math.max(this.slopeMad * MAD_TO_SD, 1e-4);
    if (tStat < this.minT) return null;
    const stepMs = (this.t[n - 1]! - this.t[0]!) / (n - 1);
    let mv = 0;
    for (const x of this.v) mv += x;
    mv /= n;
    // Extrapolate from the fitted level now, but never from below the last sample.
    const level = Math.max(mv + slope * ((n - 1) / 2), last);
    const etaMs = ((threshold - level) / slope) * stepMs;
    if (etaMs > horizonMs) return null;
    return this.t[n - 1]! + Math.max(0, etaMs);
  }
}
