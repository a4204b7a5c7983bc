/**
 * Online forecast accuracy bookkeeping on a step grid.
 *
 * At every step the owner records its h-step forecasts (and the last value,
 * which is the naive forecast for every horizon); when the actual for a
 * recorded target step arrives, the absolute errors of the model and of the
 * naive forecast are accumulated per horizon. ratio = modelMae / naiveMae is a
 * MASE-style relative error: below 1 means the model beats "no change".
 */
import { checkInt, checkNumberList } from "./options.js";

export interface HorizonAccuracy {
  /** Horizon in steps. */
  horizon: number;
  /** Number of scored forecasts. */
  count: number;
  modelMae: number;
  naiveMae: number;
  /** modelMae / naiveMae (NaN when nothing was scored, or the naive error is 0 and the model's too). */
  ratio: number;
}

export class OnlineAccuracy {
  readonly horizons: number[];
  /** Forecasts made from steps before this index are not scored. */
  readonly warmupSteps: number;
  private readonly ring: number;
  private readonly model: Float64Array[]; // [k][origin % ring]
  private readonly naive: Float64Array; // [origin % ring]
  private readonly originOf: Float64Array; // origin stored in the slot (NaN = empty)
  private readonly modelErr: Float64Array;
  private readonly naiveErr: Float64Array;
  private readonly counts: Float64Array;

  constructor(horizons: number[], warmupSteps = 0, owner = "accuracy") {
    this.horizons = checkNumberList(`${owner}.horizons`, horizons, (f, v) => checkInt(f, v, 1), { nonEmpty: true });
    this.warmupSteps = checkInt(`${owner}.warmupSteps`, warmupSteps, 0);
    this.ring = Math.max(...this.horizons) + 1;
    this.model = this.horizons.map(() => new Float64Array(this.ring));
    this.naive = new Float64Array(this.ring);
    this.originOf = new Float64Array(this.ring).fill(Number.NaN);
    this.modelErr = new Float64Array(this.horizons.length);
    this.naiveErr = new Float64Array(this.horizons.length);
    this.counts = new Float64Array(this.horizons.length);
  }

  /** Records, at step `origin`, the model's forecasts (one per horizon, same order) and the last value. */
  record(origin: number, forecasts: readonly number[], lastValue: number): void {
    if (origin < this.warmupSteps) return;
    const slot = origin % this.ring;
    this.originOf[slot] = origin;
    this.naive[slot] = lastValue;
    for (let k = 0; k < this.horizons.length; k++) this.model[k]![slot] = forecasts[k]!;
  }

  /** Scores the recorded forecasts that target step `index`, whose actual value is `actual`. */
  observe(index: number, actual: number): void {
    for (let k = 0; k < this.horizons.length; k++) {
      const origin = index - this.horizons[k]!;
      if (origin < this.warmupSteps) continue;
      const slot = origin % this.ring;
      if (this.originOf[slot] !== origin) continue;
      const f = this.model[k]![slot]!;
      if (!Number.isFinite(f)) continue;
      this.modelErr[k]! += Math.abs(actual - f);
      this.naiveErr[k]! += Math.abs(actual - this.naive[slot]!);
      this.counts[k]! += 1;
    }
  }

  /** Forget pending forecasts (e.g. after a data gap); accumulated errors are kept. */
  clearPending(): void {
    this.originOf.fill(Number.NaN);
  }

  results(): HorizonAccuracy[] {
    return this.horizons.map((horizon, k) => {
      const n = this.counts[k]!;
      const modelMae = n > 0 ? this.modelErr[k]! / n : Number.NaN;
      const naiveMae = n > 0 ? this.naiveErr[k]! / n : Number.NaN;
      let ratio = Number.NaN;
      if (n > 0) ratio = naiveMae > 0 ? modelMae / naiveMae : modelMae === 0 ? 1 : Number.POSITIVE_INFINITY;
      return { horizon, count: n, modelMae, naiveMae, ratio };
    });
  }
}
