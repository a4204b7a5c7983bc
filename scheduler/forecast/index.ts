/** Public API of the load forecaster (see docs/forecasting.md). */
export {
  NodeLoadForecaster,
  type NodeLoadForecasterOptions,
  type Forecast,
  type ForecastBound,
  type AccuracyEntry,
} from "./node-forecaster.js";
export { ResidualAlerter, type ResidualAlerterOptions, type ResidualExcursion } from "./alerts.js";
export { DecayingHistogram, type DecayingHistogramOptions } from "./decaying-histogram.js";
export { OnlineAccuracy, type HorizonAccuracy } from "./accuracy.js";
export { StepForecaster, type ModelDescription, type MemberName } from "./model.js";
export type { StepForecasterOptions } from "./model-options.js";
export { detectPeriod, autocorrelation, type PeriodDetectionOptions, type PeriodDetection } from "./period.js";
export { ForecastOptionError } from "./options.js";
export { pooledErrorRatio, LIVE_RATIO_MIN_COUNT, type ScoredAccuracy } from "./live-ratio.js";
export { NaiveGate, type NaiveGateOptions } from "./naive-gate.js";
