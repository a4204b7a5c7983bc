/**
 * Online anomaly alerting on forecast residuals.
 *
 * For every new value the caller passes the forecast that was made for it one
 * step earlier. The residual (actual - forecast) is tested against a band made
 * of the low and high `quantile`s of recent residuals, kept in a decaying
 * histogram and widened by `bandScale`; `consecutive` residuals outside the band
 * on the same side raise one alert, after which the rule stays quiet for
 * `cooldownMs`. A residual is added to the histogram after it is tested, so the
 * band tracks the node's normal forecast error and an anomaly is judged
 * against the past, not against itself.
 */
import { DecayingHistogram } from "./decaying-histogram.js";
import { checkInt, checkKnownKeys, checkPositive, checkRange } from "./options.js";

export interface ResidualAlerterOptions {
  /** Upper band quantile; the lower band is 1 - quantile (default 0.99). */
  quantile?: number;
  /** Multiplier applied to the band edges (default 1). */
  bandScale?: number;
  /** Residuals in a row outside the band, on the same side, needed to alert (default 2). */
  consecutive?: number;
  /** Half-life of the residual histogram in ms (required: it depends on the step). */
  halfLifeMs: number;
  /** Quiet time after an alert in ms (required: it depends on the step). */
  cooldownMs: number;
  /** Residuals needed before alerts can fire (default 100). */
  minSamples?: number;
  /** Only alert on high side ("up"), low side ("down") or both (default "both"). */
  direction?: "up" | "down" | "both";
}

/** A residual that left its band for long enough (a forecast signal; operator alerts are alerts/bus.ts AlertEvent). */
export interface ResidualExcursion {
  tMs: number;
  direction: "up" | "down";
  residual: number;
  bandLow: number;
  bandHigh: number;
}

const KEYS = ["quantile", "bandScale", "consecutive", "halfLifeMs", "cooldownMs", "minSamples", "direction"] as const;

export class ResidualAlerter {
  readonly quantile: number;
  readonly bandScale: number;
  readonly consecutive: number;
  readonly cooldownMs: number;
  readonly minSamples: number;
  readonly direction: "up" | "down" | "both";
  private readonly hist: DecayingHistogram;
  private seen = 0;
  private run = 0;
  private runSide: "up" | "down" | null = null;
  private quietUntil = Number.NEGATIVE_INFINITY;

  constructor(options: ResidualAlerterOptions) {
    const o = checkKnownKeys("alerts", options, KEYS);
    this.quantile = o.quantile === undefined ? 0.99 : checkRange("alerts.quantile", o.quantile, 0.5, 1, { minExclusive: true });
    this.bandScale = o.bandScale === undefined ? 1 : checkRange("alerts.bandScale", o.bandScale, 0, 100, { minExclusive: true });
    this.consecutive = o.consecutive === undefined ? 2 : checkInt("alerts.consecutive", o.consecutive, 1);
    this.cooldownMs = checkRange("alerts.cooldownMs", o.cooldownMs, 0, Number.MAX_VALUE);
    this.minSamples = o.minSamples === undefined ? 100 : checkInt("alerts.minSamples", o.minSamples, 0);
    const dir = o.direction ?? "both";
    if (dir !== "up" && dir !== "down" && dir !== "both") {
      throw new RangeError(`invalid forecast option "alerts.direction": must be "up", "down" or "both", got ${JSON.stringify(dir)}`);
    }
    this.direction = dir;
    this.hist = new DecayingHistogram({ halfLife: checkPositive("alerts.halfLifeMs", o.halfLifeMs) }, "alerts.histogram");
  }

  /** Current band [low, high] for residuals (NaN before any residual). */
  band(): { low: number; high: number } {
    return {
      low: this.bandScale * this.hist.percentile(1 - this.quantile),
      high: this.bandScale * this.hist.percentile(this.quantile),
    };
  }

  /** Feeds the value at tMs and the forecast made for it; returns an alert or null. */
  update(tMs: number, actual: number, predicted: number): ResidualExcursion | null {
    if (!Number.isFinite(actual) || !Number.isFinite(predicted)) return null;
    const r = actual - predicted;
    let event: ResidualExcursion | null = null;
    if (this.seen >= this.minSamples) {
      const { low, high } = this.band();
      const side: "up" | "down" | null = r > high ? "up" : r < low ? "down" : null;
      const allowed = side !== null && (this.direction === "both" || this.direction === side);
      if (allowed) {
        this.run = this.runSide === side ? this.run + 1 : 1;
        this.runSide = side;
      } else {
        this.run = 0;
        this.runSide = null;
      }
      if (this.run >= this.consecutive && tMs >= this.quietUntil && side !== null) {
        event = { tMs, direction: side, residual: r, bandLow: low, bandHigh: high };
        this.quietUntil = tMs + this.cooldownMs;
        this.run = 0;
        this.runSide = null;
      }
    }
    this.hist.add(r, tMs);
    this.seen++;
    return event;
  }
}
