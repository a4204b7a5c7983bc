/**
 * Automatic detection of a short seasonal period from the autocorrelation
 * function (ACF) of the recent history.
 *
 * The history is first detrended (least-squares line) and the sample ACF is
 * computed for every candidate lag. A lag is a candidate season when
 *   - it is a local maximum of the ACF (over +-`peakRadius` lags),
 *   - its ACF exceeds both `minAcf` and the white-noise significance bound
 *     `zScore / sqrt(n)`,
 *   - it rises at least `minProminence` above the lowest ACF value at a
 *     smaller lag (a slowly decaying ACF - trend or level shifts - has no
 *     prominent peak and is therefore not mistaken for a season),
 *   - at least `minCycles` whole cycles fit into the history.
 * Among the candidates the one with the largest ACF wins, except that a
 * smaller candidate that divides it and reaches `harmonicRatio` of its ACF is
 * preferred (the fundamental rather than a multiple of it).
 */
import { checkFinite, checkInt, checkKnownKeys, checkRange } from "./options.js";

export interface PeriodDetectionOptions {
  /** Smallest candidate lag (default 2). */
  minPeriod?: number;
  /** Largest candidate lag (default: history length / minCycles). */
  maxPeriod?: number;
  /** Minimum ACF at the chosen lag (default 0.2). */
  minAcf?: number;
  /** Minimum rise above the lowest ACF value at a smaller lag (default 0.1). */
  minProminence?: number;
  /** Multiple of 1/sqrt(n) the ACF must exceed (default 3). */
  zScore?: number;
  /** Whole cycles that must fit in the history (default 2). */
  minCycles?: number;
  /** Local-maximum neighbourhood radius in lags (default 1). */
  peakRadius?: number;
  /** A divisor lag is preferred when its ACF is at least this share of the best (default 0.8). */
  harmonicRatio?: number;
}

export interface PeriodDetection {
  /** Detected period in steps, or null when no season is significant. */
  period: number | null;
  /** ACF at the chosen period (0 when none). */
  acf: number;
  /** Candidate peaks that passed every test, best first. */
  candidates: { lag: number; acf: number }[];
}

const KEYS = ["minPeriod", "maxPeriod", "minAcf", "minProminence", "zScore", "minCycles", "peakRadius", "harmonicRatio"] as const;

export function validatePeriodOptions(raw: unknown, owner = "period"): Required<Omit<PeriodDetectionOptions, "maxPeriod">> & { maxPeriod?: number } {
  const o = checkKnownKeys(owner, raw, KEYS);
  const minPeriod = o.minPeriod === undefined ? 2 : checkInt(`${owner}.minPeriod`, o.minPeriod, 2);
  const out: Required<Omit<PeriodDetectionOptions, "maxPeriod">> & { maxPeriod?: number } = {
    minPeriod,
    minAcf: o.minAcf === undefined ? 0.2 : checkRange(`${owner}.minAcf`, o.minAcf, 0, 1),
    minProminence: o.minProminence === undefined ? 0.1 : checkRange(`${owner}.minProminence`, o.minProminence, 0, 2),
    zScore: o.zScore === undefined ? 3 : checkRange(`${owner}.zScore`, o.zScore, 0, 100),
    minCycles: o.minCycles === undefined ? 2 : checkRange(`${owner}.minCycles`, o.minCycles, 1, 1000),
    peakRadius: o.peakRadius === undefined ? 1 : checkInt(`${owner}.peakRadius`, o.peakRadius, 1, 1000),
    harmonicRatio: o.harmonicRatio === undefined ? 0.8 : checkRange(`${owner}.harmonicRatio`, o.harmonicRatio, 0, 1),
  };
  if (o.maxPeriod !== undefined) {
    out.maxPeriod = checkInt(`${owner}.maxPeriod`, o.maxPeriod, minPeriod);
  }
  checkFinite(`${owner}.minAcf`, out.minAcf);
  return out;
}

/** Sample autocorrelation of `values` (after removing a least-squares line) for lags 0..maxLag. */
export function autocorrelation(values: ArrayLike<number>, maxLag: number): Float64Array {
  const n = values.length;
  const acf = new Float64Array(Math.max(0, Math.min(maxLag, n - 1)) + 1);
  if (n < 2) return acf;
  const x = detrend(values);
  let denom = 0;
  for (let i = 0; i < n; i++) denom += x[i]! * x[i]!;
  if (denom <= 0) return acf; // constant series: no correlation structure
  for (let lag = 0; lag < acf.length; lag++) {
    let s = 0;
    for (let i = lag; i < n; i++) s += x[i]! * x[i - lag]!;
    acf[lag] = s / denom;
  }
  return acf;
}

/**
 * Robust detrending: winsorise at median +- 5 MAD (so a few isolated spikes
 * can neither create nor hide a seasonal correlation, nor tilt the trend
 * line), remove the least-squares line, winsorise the residuals again and
 * centre them.
 */
function detrend(values: ArrayLike<number>): Float64Array {
  const n = values.length;
  const x = winsorise(Float64Array.from(values as ArrayLike<number>));
  let sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (let i = 0; i < n; i++) {
    const y = x[i]!;
    sx += i; sy += y; sxx += i * i; sxy += i * y;
  }
  const d = n * sxx - sx * sx;
  const slope = d === 0 ? 0 : (n * sxy - sx * sy) / d;
  const icpt = (sy - slope * sx) / n;
  for (let i = 0; i < n; i++) x[i] = x[i]! - (icpt + slope * i);
  winsorise(x);
  let mean = 0;
  for (let i = 0; i < n; i++) mean += x[i]!;
  mean /= n;
  for (let i = 0; i < n; i++) x[i] = x[i]! - mean;
  return x;
}

/** Clamps x (in place) to median +- 5 scaled MADs; no-op when the MAD is 0. */
function winsorise(x: Float64Array): Float64Array {
  const n = x.length;
  if (n === 0) return x;
  const sorted = Float64Array.from(x).sort();
  const med = sorted[n >> 1]!;
  const dev = sorted.map((v) => Math.abs(v - med)).sort();
  const mad = dev[n >> 1]!;
  if (mad > 0) {
    const lo = med - 5 * 1.4826 * mad;
    const hi = med + 5 * 1.4826 * mad;
    for (let i = 0; i < n; i++) x[i] = Math.min(hi, Math.max(lo, x[i]!));
  }
  return x;
}

export function detectPeriod(values: ArrayLike<number>, options?: PeriodDetectionOptions): PeriodDetection {
  const o = validatePeriodOptions(options);
  const n = values.length;
  const none: PeriodDetection = { period: null, acf: 0, candidates: [] };
  const maxByCycles = Math.floor(n / o.minCycles);
  const maxPeriod = Math.min(o.maxPeriod ?? maxByCycles, maxByCycles);
  if (maxPeriod < o.minPeriod) return none;
  const acf = autocorrelation(values, maxPeriod + o.peakRadius);
  const bound = Math.max(o.minAcf, o.zScore / Math.sqrt(n));
  const candidates: { lag: number; acf: number }[] = [];
  let runningMin = 1;
  for (let lag = 1; lag <= maxPeriod; lag++) {
    const a = acf[lag]!;
    if (lag >= o.minPeriod && a > bound && a - runningMin >= o.minProminence) {
      let isPeak = true;
      for (let d = 1; d <= o.peakRadius && isPeak; d++) {
        const left = acf[lag - d];
        const right = acf[lag + d];
        if (left !== undefined && left > a) isPeak = false;
        if (right !== undefined && right >= a) isPeak = false;
      }
      if (isPeak) candidates.push({ lag, acf: a });
    }
    if (a < runningMin) runningMin = a;
  }
  if (candidates.length === 0) return none;
  candidates.sort((p, q) => q.acf - p.acf || p.lag - q.lag);
  const best = candidates[0]!;
  let chosen = best;
  for (const c of candidates) {
    if (c.lag < chosen.lag && best.lag % c.lag === 0 && c.acf >= o.harmonicRatio * best.acf) chosen = c;
  }
  return { period: chosen.lag, acf: chosen.acf, candidates };
}
