/**
 * Additive Holt-Winters exponential smoothing with an optional damped trend
 * and an optional robust (clipped-residual) update, plus a deterministic
 * parameter fit that minimises the multi-step forecast error on a history.
 *
 *   forecast(h) = level + trend * (phi + phi^2 + ... + phi^h) + season[t+h]
 *
 *   level'  = alpha * (y* - season[t]) + (1 - alpha) * (level + phi * trend)
 *   trend'  = beta  * (level' - level) + (1 - beta) * phi * trend
 *   season' = gamma * (y* - level')    + (1 - gamma) * season[t]
 *
 * where y* is the observation, or - in robust mode - the observation with its
 * one-step residual clipped to `robustK` times a running mean absolute
 * residual (so one spike does not drag the level and the season away).
 * With period 0 (or 1) the model is Holt's linear (damped) trend method; with
 * beta = 0 and no season it is simple exponential smoothing.
 *
 * Level shifts (`shiftK` > 0): clipping protects the level from one spike, but it also holds the
 * level back after a real step (on/off heartbeat load), and a small alpha lags on its own. So
 * `shiftRun` residuals in a row beyond `shiftK` scales on the same side are taken as a step: the
 * level is re-anchored on the latest observation (de-seasonalised; not the run's mean, which
 * lags when the step takes a few samples, as a host going idle does), the trend is zeroed
 * (a step is not a trend) and the scale goes back to its value before the run (the step's
 * residuals are not noise). One outlier, or outliers on alternating sides, never re-anchor.
 */

export interface HoltWintersParams {
  alpha: number;
  beta: number;
  gamma: number;
  phi: number;
}

export interface HoltWintersState {
  level: number;
  trend: number;
  /** Seasonal components indexed by absolute step modulo period (empty when non-seasonal). */
  season: Float64Array;
  period: number;
  /** Absolute index of the next observation. */
  pos: number;
  /** Running mean absolute one-step residual (robust mode scale). */
  scale: number;
  /** Current run of residuals beyond shiftK scales: side (0 = none), length, scale before it. */
  runSign: number;
  runLen: number;
  runScale: number;
  /** Level shifts taken so far. */
  shifts: number;
  /** Residuals the scale has seen (it starts at 0; the shift rule waits for 2 / scaleAlpha of them). */
  scaleN: number;
}

export interface HoltWintersConfig {
  /** Clip one-step residuals beyond robustK * scale when updating (0 disables). */
  robustK: number;
  /** Smoothing of the residual scale. */
  scaleAlpha: number;
  /** Residuals beyond shiftK * scale, `shiftRun` in a row on one side, re-anchor the level (0 or absent disables). */
  shiftK?: number;
  /** Length of that run (default 2). */
  shiftRun?: number;
}

function dampedSum(phi: number, h: number): number {
  if (phi === 1) return h;
  return (phi * (1 - Math.pow(phi, h))) / (1 - phi);
}

const NO_RUN = { runSign: 0, runLen: 0, runScale: 0, shifts: 0, scaleN: 0 } as const;

/** Initial state from the first cycle(s) of `values` (period <= 1: non-seasonal). */
function initHoltWinters(values: ArrayLike<number>, period: number): HoltWintersState {
  const m = period > 1 ? period : 0;
  const n = values.length;
  if (m > 0 && n >= m) {
    let mean1 = 0;
    for (let i = 0; i < m; i++) mean1 += values[i]!;
    mean1 /= m;
    let trend = 0;
    const cycles = Math.min(4, Math.floor(n / m));
    if (n >= 2 * m) {
      let mean2 = 0;
      for (let i = m; i < 2 * m; i++) mean2 += values[i]!;
      mean2 /= m;
      trend = (mean2 - mean1) / m;
    }
    const season = new Float64Array(m);
    // Average the de-levelled values of the first cycles, then centre.
    for (let c = 0; c < cycles; c++) {
      let mean = 0;
      for (let i = 0; i < m; i++) mean += values[c * m + i]!;
      mean /= m;
      for (let i = 0; i < m; i++) season[i]! += (values[c * m + i]! - mean) / cycles;
    }
    let sMean = 0;
    for (let i = 0; i < m; i++) sMean += season[i]!;
    sMean /= m;
    for (let i = 0; i < m; i++) season[i] = season[i]! - sMean;
    // The state is positioned after the first cycle: the level describes step m-1.
    let scale = 0;
    for (let i = 1; i < m; i++) scale += Math.abs(values[i]! - values[i - 1]!);
    scale = m > 1 ? scale / (m - 1) : 0;
    return { level: mean1 + trend * (m - 1) / 2, trend, season, period: m, pos: m, scale, ...NO_RUN };
  }
  const first = n > 0 ? values[0]! : 0;
  return { level: first, trend: 0, season: new Float64Array(0), period: 0, pos: n > 0 ? 1 : 0, scale: 0, ...NO_RUN };
}

/** Forecast h >= 1 steps ahead of the last observation. */
export function hwForecast(s: HoltWintersState, p: HoltWintersParams, h: number): number {
  let f = s.level + s.trend * dampedSum(p.phi, h);
  if (s.period > 0) f += s.season[(s.pos - 1 + h) % s.period]!;
  return f;
}

/** Updates the state with observation y (in place). */
export function hwUpdate(s: HoltWintersState, p: HoltWintersParams, cfg: HoltWintersConfig, y: number): void {
  const m = s.period;
  const idx = m > 0 ? s.pos % m : 0;
  const sPrev = m > 0 ? s.season[idx]! : 0;
  const pred = s.level + p.phi * s.trend + sPrev;
  const e = y - pred;
  const shiftK = cfg.shiftK ?? 0;
  const scaleBefore = s.scale;
  let yy = y;
  if (cfg.robustK > 0) {
    const lim = cfg.robustK * s.scale;
    if (s.scale > 0 && Math.abs(e) > lim) yy = pred + Math.sign(e) * lim;
  }
  if (cfg.robustK > 0 || shiftK > 0) {
    // The scale's update ignores the part of a residual beyond 3 clipping limits (shift limits without clipping).
    const cap = 3 * (cfg.robustK > 0 ? cfg.robustK : shiftK) * s.scale;
    s.scale = (1 - cfg.scaleAlpha) * s.scale + cfg.scaleAlpha * Math.min(Math.abs(e), s.scale > 0 ? cap : Math.abs(e));
    s.scaleN++;
  }
  const level = p.alpha * (yy - sPrev) + (1 - p.alpha) * (s.level + p.phi * s.trend);
  s.trend = p.beta * (level - s.level) + (1 - p.beta) * p.phi * s.trend;
  s.level = level;
  if (m > 0) s.season[idx] = p.gamma * (yy - level) + (1 - p.gamma) * sPrev;
  s.pos++;
  // Until the scale has settled (it starts at 0), every residual would look like a step.
  if (shiftK > 0 && s.scaleN > 2 / cfg.scaleAlpha) trackShift(s, cfg, e, y - sPrev, scaleBefore, shiftK);
}

/** Level-shift rule (see the header): `e` is the one-step residual, `z` the de-seasonalised observation. */
function trackShift(s: HoltWintersState, cfg: HoltWintersConfig, e: number, z: number, scaleBefore: number, shiftK: number): void {
  // A flat series (scale 0, e.g. a core pinned at 100 %) counts any move as beyond the limit.
  const side = Math.abs(e) > shiftK * scaleBefore ? Math.sign(e) : 0;
  if (side === 0) {
    s.runSign = 0;
    s.runLen = 0;
    return;
  }
  if (side !== s.runSign) {
    s.runSign = side;
    s.runLen = 0;
    s.runScale = scaleBefore;
  }
  s.runLen++;
  if (s.runLen < (cfg.shiftRun ?? 2)) return;
  s.level = z;
  s.trend = 0;
  s.scale = s.runScale;
  s.runSign = 0;
  s.runLen = 0;
  s.shifts++;
}

export interface FitResult {
  params: HoltWintersParams;
  /** State after running the fitted model over the whole history. */
  state: HoltWintersState;
  /** Mean over the loss horizons of model MAE / naive MAE on the history (lower is better). */
  loss: number;
}

export interface FitGrid {
  alpha: readonly number[];
  beta: readonly number[];
  gamma: readonly number[];
  phi: readonly number[];
}

export const DEFAULT_GRID: FitGrid = {
  alpha: [0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9],
  beta: [0, 0.02, 0.1],
  gamma: [0.02, 0.05, 0.15, 0.3],
  phi: [0.8, 0.95],
};

/**
 * Runs the model over `values` and scores the h-step errors for each horizon
 * in `horizons` relative to the last-value naive forecast (scale-free, so
 * horizons weigh equally). Returns the final state too.
 */
function evaluateHoltWinters(
  values: ArrayLike<number>,
  period: number,
  params: HoltWintersParams,
  cfg: HoltWintersConfig,
  horizons: readonly number[],
  burnIn: number,
): { loss: number; state: HoltWintersState } {
  const n = values.length;
  const s = initHoltWinters(values, period);
  if (params.beta === 0) s.trend = 0;
  const modelErr = new Float64Array(horizons.length);
  const naiveErr = new Float64Array(horizons.length);
  const start = Math.max(burnIn, s.pos);
  for (let t = s.pos; t < n; t++) {
    hwUpdate(s, params, cfg, values[t]!);
    if (t < start) continue;
    for (let k = 0; k < horizons.length; k++) {
      const h = horizons[k]!;
      if (t + h >= n) continue;
      const actual = values[t + h]!;
      modelErr[k]! += Math.abs(actual - hwForecast(s, params, h));
      naiveErr[k]! += Math.abs(actual - values[t]!);
    }
  }
  let loss = 0;
  let used = 0;
  for (let k = 0; k < horizons.length; k++) {
    if (naiveErr[k]! > 0) {
      loss += modelErr[k]! / naiveErr[k]!;
      used++;
    } else if (modelErr[k]! > 0) {
      loss += 10;
      used++;
    }
  }
  return { loss: used > 0 ? loss / used : 0, state: s };
}

/** Exhaustive, deterministic grid search (ties keep the earlier grid point). */
export function fitHoltWinters(
  values: ArrayLike<number>,
  period: number,
  grid: FitGrid,
  cfg: HoltWintersConfig,
  horizons: readonly number[],
  burnIn: number,
): FitResult {
  const seasonal = period > 1 && values.length >= period;
  const gammas = seasonal ? grid.gamma : [0];
  let best: FitResult | null = null;
  for (const alpha of grid.alpha) {
    for (const beta of grid.beta) {
      const phis = beta === 0 ? [1] : grid.phi;
      for (const phi of phis) {
        for (const gamma of gammas) {
          const params = { alpha, beta, gamma, phi };
          const r = evaluateHoltWinters(values, seasonal ? period : 0, params, cfg, horizons, burnIn);
          if (best === null || r.loss < best.loss) best = { params, state: r.state, loss: r.loss };
        }
      }
    }
  }
  return best!;
}
