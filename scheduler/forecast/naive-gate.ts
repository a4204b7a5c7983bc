/**
 * NaiveGate: per tracked horizon, answer with the model only while it has recently beaten the
 * last-value (naive) forecast, and with the last value otherwise (issue #14).
 *
 * The ensemble's own selection (model.ts) compares members with a margin that favours
 * Holt-Winters and chases noise between five members, so its *output* can lose to naive for
 * long stretches on step-like load. The gate scores that output itself against naive on the
 * same origins and targets (exponentially weighted absolute errors), and keeps scoring it while
 * closed (shadow), so it knows when to reopen. Hysteresis: it opens when the recent ratio
 * model / naive falls below `enter` and closes when it rises above `exit` (enter <= exit);
 * between the two it keeps its state, so a ratio hovering near 1 does not make it flap.
 */
import { checkInt, checkRange, ForecastOptionError } from "./options.js";

export interface NaiveGateOptions {
  /** Half-life, in scored forecasts, of the error memory. */
  halfLifeSteps: number;
  /** Open (use the model) when the recent ratio falls below this. */
  enter: number;
  /** Close (use naive) when the recent ratio rises above this. */
  exit: number;
  /** Decayed weight of scored forecasts needed before the gate moves. */
  minWeight: number;
}

export function validateGateOptions(enter: number, exit: number, owner: string): void {
  checkRange(`${owner}.gateEnter`, enter, 0, 10);
  checkRange(`${owner}.gateExit`, exit, 0, 10);
  if (enter > exit) throw new ForecastOptionError(`${owner}.gateEnter`, `must be <= gateExit (${exit}), got ${enter}`);
}

export class NaiveGate {
  readonly horizons: readonly number[];
  private readonly opts: NaiveGateOptions;
  private readonly decay: number;
  private readonly ring: number;
  private readonly pending: Float64Array[]; // [k][origin % ring] ungated forecast
  private readonly naive: Float64Array; // [origin % ring] last value at the origin
  private readonly originOf: Float64Array; // origin in the slot (NaN = empty)
  private readonly errModel: Float64Array;
  private readonly errNaive: Float64Array;
  private readonly weight: Float64Array;
  private readonly open: Uint8Array;
  private switchCount = 0;

  constructor(horizons: readonly number[], opts: NaiveGateOptions) {
    this.horizons = horizons.map((h, i) => checkInt(`gate.horizons[${i}]`, h, 1));
    checkRange("gate.halfLifeSteps", opts.halfLifeSteps, 1, 1e9);
    validateGateOptions(opts.enter, opts.exit, "gate");
    checkRange("gate.minWeight", opts.minWeight, 0, 1e9);
    this.opts = { ...opts };
    this.decay = Math.pow(0.5, 1 / opts.halfLifeSteps);
    this.ring = Math.max(...this.horizons) + 1;
    this.pending = this.horizons.map(() => new Float64Array(this.ring));
    this.naive = new Float64Array(this.ring);
    this.originOf = new Float64Array(this.ring).fill(Number.NaN);
    const n = this.horizons.length;
    this.errModel = new Float64Array(n);
    this.errNaive = new Float64Array(n);
    this.weight = new Float64Array(n);
    // Open at first (the ensemble answers; it is naive itself until its first fit): started
    // closed, the gate kept a model that wins early out at the start of the recorded live series
    // and scored worse on their training parts (bench/results/forecast.md).
    this.open = new Uint8Array(n).fill(1);
  }

  /** Scores the forecasts that target step `index` against its actual `y`, then moves each horizon's gate. */
  observe(index: number, y: number): void {
    for (let k = 0; k < this.horizons.length; k++) {
      const origin = index - this.horizons[k]!;
      const slot = origin % this.ring;
      if (origin < 0 || this.originOf[slot] !== origin) continue;
      const f = this.pending[k]![slot]!;
      if (!Number.isFinite(f)) continue;
      this.errModel[k] = this.errModel[k]! * this.decay + Math.abs(y - f);
      this.errNaive[k] = this.errNaive[k]! * this.decay + Math.abs(y - this.naive[slot]!);
      this.weight[k] = this.weight[k]! * this.decay + 1;
      const r = this.ratio(k);
      if (this.weight[k]! < this.opts.minWeight) continue;
      if (this.open[k] === 0 && r < this.opts.enter) {
        this.open[k] = 1;
        this.switchCount++;
      } else if (this.open[k] === 1 && r > this.opts.exit) {
        this.open[k] = 0;
        this.switchCount++;
      }
    }
  }

  /** Records, at step `origin`, the ungated forecasts (one per horizon, same order) and the last value. */
  record(origin: number, forecasts: readonly number[], last: number): void {
    const slot = origin % this.ring;
    this.originOf[slot] = origin;
    this.naive[slot] = last;
    for (let k = 0; k < this.horizons.length; k++) this.pending[k]![slot] = forecasts[k]!;
  }

  /** Whether horizon index `k` answers with the model (true) or the last value (false). */
  useModel(k: number): boolean {
    return this.open[k] === 1;
  }

  /**
   * Recent model / naive error ratio at horizon index `k`: NaN before any score; when naive's
   * recent error is 0 (a flat series), 1 if the model's is too, else +Infinity.
   */
  ratio(k: number): number {
    const m = this.errModel[k]!;
    const n = this.errNaive[k]!;
    if (this.weight[k] === 0) return Number.NaN;
    if (n > 0) return m / n;
    return m === 0 ? 1 : Number.POSITIVE_INFINITY;
  }

  /** Gate openings and closings so far, over all horizons. */
  get switches(): number {
    return this.switchCount;
  }
}
