/**
 * Direct multi-step autoregression: for each horizon h a separate linear model
 *
 *   y[t+h] - y[t] = c + sum_i a_i (y[t-i] - y[t]) + b (y[t+h-m] - y[t])
 *
 * over the last `lags` values (and, when a season m is known, the value one
 * season before the target) fitted by least absolute deviation (iteratively
 * reweighted least squares with a small ridge), which matches the MAE the
 * forecaster is judged by and shrugs off isolated spikes. Expressing every
 * term relative to the last value makes "no change" (the naive forecast) the
 * all-zero model that the ridge shrinks towards.
 *
 * With exogenous inputs (ARX: what the scheduler knows besides the series, e.g. a node's running
 * and queued tasks), their values at t are further terms b_j x_j[t], taken as they come: a zero
 * coefficient is still "no change".
 */

export interface DirectArModel {
  horizon: number;
  lags: number;
  period: number;
  /** Exogenous inputs used (0: plain AR). */
  exogenous: number;
  /** Coefficients: [c, a_1..a_{lags-1}, b?, x_1..x_exogenous]. */
  coef: Float64Array;
}

/** Exogenous inputs by absolute index (same indexing as the series): the vector known at step i. */
export type ExogenousAt = (i: number) => ArrayLike<number>;

/** Value accessor by absolute index; `first` is the oldest index available. */
interface Series {
  at(i: number): number;
  first: number;
}

function features(y: Series, t: number, h: number, lags: number, period: number, out: Float64Array, exog?: ExogenousAt): boolean {
  if (t - (lags - 1) < y.first) return false;
  const last = y.at(t);
  out[0] = 1;
  for (let i = 1; i < lags; i++) out[i] = y.at(t - i) - last;
  if (period > 0) {
    const back = period * Math.ceil(h / period);
    const idx = t + h - back;
    if (idx < y.first) return false;
    out[lags] = y.at(idx) - last;
  }
  if (exog) {
    const x = exog(t);
    const base = lags + (period > 0 ? 1 : 0);
    for (let j = 0; j < x.length; j++) {
      // Steps without the inputs (NaN) are neither fitted nor forecast from.
      if (!Number.isFinite(x[j]!)) return false;
      out[base + j] = x[j]!;
    }
  }
  return true;
}

/** Solves (A + ridge*I) x = b in place by Gaussian elimination with partial pivoting. */
function solve(a: Float64Array, b: Float64Array, d: number): Float64Array | null {
  for (let c = 0; c < d; c++) {
    let piv = c;
    for (let r = c + 1; r < d; r++) if (Math.abs(a[r * d + c]!) > Math.abs(a[piv * d + c]!)) piv = r;
    if (Math.abs(a[piv * d + c]!) < 1e-300) return null;
    if (piv !== c) {
      for (let k = 0; k < d; k++) {
        const tmp = a[c * d + k]!;
        a[c * d + k] = a[piv * d + k]!;
        a[piv * d + k] = tmp;
      }
      const tb = b[c]!;
      b[c] = b[piv]!;
      b[piv] = tb;
    }
    for (let r = c + 1; r < d; r++) {
      const f = a[r * d + c]! / a[c * d + c]!;
      if (f === 0) continue;
      for (let k = c; k < d; k++) a[r * d + k] = a[r * d + k]! - f * a[c * d + k]!;
      b[r] = b[r]! - f * b[c]!;
    }
  }
  const x = new Float64Array(d);
  for (let r = d - 1; r >= 0; r--) {
    let s = b[r]!;
    for (let k = r + 1; k < d; k++) s -= a[r * d + k]! * x[k]!;
    x[r] = s / a[r * d + r]!;
  }
  return x;
}

export function fitDirectAr(
  y: ArrayLike<number>,
  horizon: number,
  lags: number,
  period: number,
  opts: { ridge?: number; iterations?: number; exogenous?: { at: ExogenousAt; width: number } } = {},
): DirectArModel | null {
  const ridge = opts.ridge ?? 0.05;
  const iterations = opts.iterations ?? 6;
  const ex = opts.exogenous;
  const width = ex?.width ?? 0;
  const d = lags + (period > 0 ? 1 : 0) + width;
  const n = y.length;
  const rowsX: Float64Array[] = [];
  const rowsY: number[] = [];
  const x = new Float64Array(d);
  const series: Series = { at: (i) => y[i]!, first: 0 };
  for (let t = 0; t + horizon < n; t++) {
    if (!features(series, t, horizon, lags, period, x, ex?.at)) continue;
    rowsX.push(Float64Array.from(x));
    rowsY.push(y[t + horizon]! - y[t]!);
  }
  const m = rowsX.length;
  if (m < 4 * d) return null;
  // Scale for the ridge: the mean absolute target change.
  let scale = 0;
  for (const v of rowsY) scale += Math.abs(v);
  scale = scale / m || 1;
  const w = new Float64Array(m).fill(1);
  let coef: Float64Array | null = null;
  for (let it = 0; it < iterations; it++) {
    const a = new Float64Array(d * d);
    const b = new Float64Array(d);
    let wsum = 0;
    for (let r = 0; r < m; r++) {
      const xr = rowsX[r]!, wr = w[r]!, yr = rowsY[r]!;
      wsum += wr;
      for (let i = 0; i < d; i++) {
        const wx = wr * xr[i]!;
        b[i] = b[i]! + wx * yr;
        for (let j = i; j < d; j++) a[i * d + j] = a[i * d + j]! + wx * xr[j]!;
      }
    }
    for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) a[i * d + j] = a[j * d + i]!;
    // Scale-free ridge on the slopes (not the intercept): inflate each diagonal term.
    for (let i = 1; i < d; i++) a[i * d + i] = a[i * d + i]! * (1 + ridge) + 1e-12 * wsum;
    const sol = solve(a, b, d);
    if (!sol) break;
    coef = sol;
    // LAD reweighting: w = 1 / max(|residual|, eps).
    const eps = 0.05 * scale;
    for (let r = 0; r < m; r++) {
      const xr = rowsX[r]!;
      let pred = 0;
      for (let i = 0; i < d; i++) pred += sol[i]! * xr[i]!;
      w[r] = 1 / Math.max(Math.abs(rowsY[r]! - pred), eps);
    }
  }
  return coef ? { horizon, lags, period, exogenous: width, coef } : null;
}

/**
 * Forecast of y[t+h] from the model, t being the newest index; `at(i)` reads
 * absolute index i >= first. NaN if the history is too short.
 */
export function directArForecast(model: DirectArModel, at: (i: number) => number, first: number, t: number, exog?: ExogenousAt): number {
  const d = model.coef.length;
  const x = new Float64Array(d);
  if (model.exogenous > 0 && !exog) return Number.NaN;
  if (!features({ at, first }, t, model.horizon, model.lags, model.period, x, model.exogenous > 0 ? exog : undefined)) return Number.NaN;
  let s = 0;
  for (let i = 0; i < d; i++) s += model.coef[i]! * x[i]!;
  return at(t) + s;
}

/**
 * Forecast at any horizon from models fitted at some: the exact one, else linear interpolation
 * between the nearest fitted horizons (h = 0 is the last value); held after the longest.
 */
export function interpolatedForecast(models: readonly DirectArModel[], h: number, at: (i: number) => number, first: number, t: number, exog?: ExogenousAt): number {
  if (models.length === 0) return Number.NaN;
  const exact = models.find((m) => m.horizon === h);
  if (exact) return directArForecast(exact, at, first, t, exog);
  let lo: DirectArModel | null = null;
  let hi: DirectArModel | null = null;
  for (const m of models) {
    if (m.horizon < h && (!lo || m.horizon > lo.horizon)) lo = m;
    if (m.horizon > h && (!hi || m.horizon < hi.horizon)) hi = m;
  }
  const fLo = lo ? directArForecast(lo, at, first, t, exog) : at(t);
  const hLo = lo ? lo.horizon : 0;
  if (!hi) return fLo;
  const fHi = directArForecast(hi, at, first, t, exog);
  const w = (h - hLo) / (hi.horizon - hLo);
  return fLo + w * (fHi - fLo);
}
