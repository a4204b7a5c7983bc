// Placement's public surface, one import for callers outside placement/ (the simulator in
// bench/placement/, tests): node views, the feasibility checks and the capacity ranking, the
// feasibility stage and its metrics, the strategies, and the controller's types.
export * from "./constraints.js";
export * from "./feasibility.js";
export * from "./strategy.js";
export type { ForecastAccuracyEntry, PlacementHooks, PredictedSaturation } from "./controller.js";
