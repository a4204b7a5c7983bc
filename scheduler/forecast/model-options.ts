// The StepForecaster's options and their validation (each error names its field), apart from the
// model itself (model.ts).
import { checkInt, checkKnownKeys, checkNumberList, checkRange, ForecastOptionError } from "./options.js";
import { validateGateOptions } from "./naive-gate.js";
import { type PeriodDetectionOptions, validatePeriodOptions } from "./period.js";

export interface StepForecasterOptions {
  /** Steps of history kept for period detection and fitting (default 1152). */
  historySteps?: number;
  /** Refit (period detection + parameter fit) every this many steps (default 144). */
  refitEverySteps?: number;
  /** Steps needed before the first fit; until then the forecast is the last value (default 24). */
  minFitSteps?: number;
  /** Horizons (steps) whose errors the fit minimises and the ensemble tracks (default [1, 3, 6, 12]). */
  fitHorizons?: number[];
  /** "auto" (detect), "none", or a fixed period in steps (default "auto"). */
  seasonality?: "auto" | "none" | number;
  /** Period detection tuning. */
  period?: PeriodDetectionOptions;
  /** Allow a damped trend in the fit (default true). */
  damped?: boolean;
  /** Robust update: clip residuals beyond robustK * running MAE (0 = off, default 2: chosen on the training split, bench/forecast/chosen.json). */
  robustK?: number;
  /** Level shift: `shiftRun` one-step residuals in a row beyond shiftK x running MAE on one side re-anchor Holt-Winters' level (0 = off; holt-winters.ts). */
  shiftK?: number;
  /** Residuals in a row that make a level shift (default 2). */
  shiftRun?: number;
  /** Select per horizon among Holt-Winters, naive and seasonal naive by recent accuracy (default true). */
  ensemble?: boolean;
  /** Half-life, in steps, of the ensemble's error memory (default 144). */
  selectionHalfLifeSteps?: number;
  /** A challenger replaces Holt-Winters only if its recent MAE is below (1 - margin) x HW's (default 0.05). */
  selectionMargin?: number;
  /** Naive gate (naive-gate.ts): half-life in steps of its error memory; 0 = off (default GATE_DEFAULTS). */
  gateHalfLifeSteps?: number;
  /** The gate opens (model answers) when the recent model / naive error ratio falls below this. */
  gateEnter?: number;
  /** The gate closes (last value answers) when that ratio rises above this (>= gateEnter). */
  gateExit?: number;
  /** Lags of the exogenous ARX member (arx-member.ts), which answers only when observations come with inputs; 0 = off (default 4). */
  arxLags?: number;
  /**
   * What the ARX member regresses on: the inputs ("levels"), their change since the previous step
   * ("changes": zero at a steady state, like the relative lags, so the ridge leaves them alone), or
   * both (default "levels").
   */
  arxInputs?: ArxInputs;
}

export interface ResolvedStepForecasterOptions {
  historySteps: number;
  refitEverySteps: number;
  minFitSteps: number;
  fitHorizons: number[];
  seasonality: "auto" | "none" | number;
  period: PeriodDetectionOptions;
  damped: boolean;
  robustK: number;
  shiftK: number;
  shiftRun: number;
  ensemble: boolean;
  selectionHalfLifeSteps: number;
  selectionMargin: number;
  gateHalfLifeSteps: number;
  gateEnter: number;
  gateExit: number;
  arxLags: number;
  arxInputs: ArxInputs;
}

export type ArxInputs = "levels" | "changes" | "both";

/** Gate off by default: no setting tried beat no gate on the training splits (docs/forecasting.md, "The model", 4). */
export const GATE_DEFAULTS = { gateHalfLifeSteps: 0, gateEnter: 0.95, gateExit: 1 } as const;

const KEYS = [
  "historySteps", "refitEverySteps", "minFitSteps", "fitHorizons", "seasonality", "period",
  "damped", "robustK", "shiftK", "shiftRun", "ensemble", "selectionHalfLifeSteps", "selectionMargin",
  "gateHalfLifeSteps", "gateEnter", "gateExit", "arxLags", "arxInputs",
] as const;

function checkArxInputs(field: string, v: unknown): ArxInputs {
  if (v !== "levels" && v !== "changes" && v !== "both") throw new ForecastOptionError(field, `must be "levels", "changes" or "both", got ${JSON.stringify(v)}`);
  return v;
}

export function resolveStepForecasterOptions(raw: unknown, owner = "model"): ResolvedStepForecasterOptions {
  const o = checkKnownKeys(owner, raw, KEYS);
  const historySteps = o.historySteps === undefined ? 1152 : checkInt(`${owner}.historySteps`, o.historySteps, 8);
  const minFitSteps = o.minFitSteps === undefined ? 24 : checkInt(`${owner}.minFitSteps`, o.minFitSteps, 4);
  if (minFitSteps > historySteps) {
    throw new ForecastOptionError(`${owner}.minFitSteps`, `must be <= historySteps (${historySteps}), got ${minFitSteps}`);
  }
  let seasonality: "auto" | "none" | number = "auto";
  if (o.seasonality !== undefined) {
    if (o.seasonality === "auto" || o.seasonality === "none") seasonality = o.seasonality;
    else if (typeof o.seasonality === "number") seasonality = checkInt(`${owner}.seasonality`, o.seasonality, 2, historySteps);
    else throw new ForecastOptionError(`${owner}.seasonality`, `must be "auto", "none" or an integer period, got ${JSON.stringify(o.seasonality)}`);
  }
  const damped = o.damped === undefined ? true : o.damped;
  if (typeof damped !== "boolean") throw new ForecastOptionError(`${owner}.damped`, "must be a boolean");
  const ensemble = o.ensemble === undefined ? true : o.ensemble;
  if (typeof ensemble !== "boolean") throw new ForecastOptionError(`${owner}.ensemble`, "must be a boolean");
  validatePeriodOptions(o.period, `${owner}.period`);
  const gateHalfLifeSteps =
    o.gateHalfLifeSteps === undefined ? GATE_DEFAULTS.gateHalfLifeSteps : checkRange(`${owner}.gateHalfLifeSteps`, o.gateHalfLifeSteps, 0, 1e9);
  const gateEnter = o.gateEnter === undefined ? GATE_DEFAULTS.gateEnter : checkRange(`${owner}.gateEnter`, o.gateEnter, 0, 10);
  const gateExit = o.gateExit === undefined ? GATE_DEFAULTS.gateExit : checkRange(`${owner}.gateExit`, o.gateExit, 0, 10);
  validateGateOptions(gateEnter, gateExit, owner);
  return {
    historySteps,
    refitEverySteps: o.refitEverySteps === undefined ? 144 : checkInt(`${owner}.refitEverySteps`, o.refitEverySteps, 1),
    minFitSteps,
    fitHorizons:
      o.fitHorizons === undefined
        ? [1, 3, 6, 12]
        : checkNumberList(`${owner}.fitHorizons`, o.fitHorizons, (f, v) => checkInt(f, v, 1, historySteps), { nonEmpty: true }),
    seasonality,
    period: (o.period ?? {}) as PeriodDetectionOptions,
    damped,
    robustK: o.robustK === undefined ? 2 : checkRange(`${owner}.robustK`, o.robustK, 0, 100),
    shiftK: o.shiftK === undefined ? 0 : checkRange(`${owner}.shiftK`, o.shiftK, 0, 100),
    shiftRun: o.shiftRun === undefined ? 2 : checkInt(`${owner}.shiftRun`, o.shiftRun, 1, 100),
    ensemble,
    selectionHalfLifeSteps:
      o.selectionHalfLifeSteps === undefined ? 144 : checkRange(`${owner}.selectionHalfLifeSteps`, o.selectionHalfLifeSteps, 1, 1e9),
    selectionMargin: o.selectionMargin === undefined ? 0.05 : checkRange(`${owner}.selectionMargin`, o.selectionMargin, 0, 1),
    gateHalfLifeSteps,
    gateEnter,
    gateExit,
    arxLags: o.arxLags === undefined ? 4 : checkInt(`${owner}.arxLags`, o.arxLags, 0, historySteps),
    arxInputs: o.arxInputs === undefined ? "levels" : checkArxInputs(`${owner}.arxInputs`, o.arxInputs),
  };
}
