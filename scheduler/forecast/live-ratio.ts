// The live distx_forecast_error_ratio: one figure over every node's utilisation forecasts.

export interface ScoredAccuracy {
  count: number;
  modelMae: number;
  naiveMae: number;
}

/** Entries with fewer scored forecasts than this are left out (a handful of errors is noise). */
export const LIVE_RATIO_MIN_COUNT = 30;

/**
 * Pooled error ratio: total model absolute error / total naive absolute error over the entries
 * (nodes × horizons) with at least `minCount` scored forecasts; NaN when none qualifies.
 * Pooled, not a mean of per-entry ratios: an idle node's flat series has a naive error near
 * zero, so its ratio is noise over noise and, averaged in with equal weight, can push the mean
 * above 1 however well the busy nodes are forecast. Pooling weights each entry by its naive
 * error, i.e. by how much there was to forecast.
 */
export function pooledErrorRatio(entries: readonly ScoredAccuracy[], minCount = LIVE_RATIO_MIN_COUNT): number {
  let model = 0;
  let naive = 0;
  for (const e of entries) {
    if (e.count < minCount || !Number.isFinite(e.modelMae) || !Number.isFinite(e.naiveMae)) continue;
    model += e.modelMae * e.count;
    naive += e.naiveMae * e.count;
  }
  if (naive > 0) return model / naive;
  return model === 0 && naive === 0 ? Number.NaN : Number.POSITIVE_INFINITY;
}
