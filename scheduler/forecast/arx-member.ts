/**
 * The exogenous ensemble member (issue #14): a direct multi-horizon ARX (direct-ar.ts) on the
 * recent values and the inputs the owner passes with each step, e.g. a node's running and queued
 * tasks and its agent's own CPU share, which last-value cannot see: a queue means the node stays
 * busy, an agent with nothing left to run means its share is about to vanish. Fitted at each
 * refit like the plain AR member and chosen by the ensemble only where its recent error wins.
 * Without inputs it never answers (NaN), so series without them forecast exactly as before.
 */
import { type DirectArModel, fitDirectAr, interpolatedForecast } from "./direct-ar.js";
import type { ArxInputs } from "./model-options.js";

export class ExogenousMember {
  private width = -1;
  private ring: Float64Array = new Float64Array(0);
  private models: DirectArModel[] = [];
  /** Absolute index of the newest step with inputs stored (-1: none yet). */
  private newest = -1;

  private readonly scratch: Float64Array[] = [];

  constructor(
    private readonly lags: number,
    private readonly historySteps: number,
    /** Levels, changes since the previous step (a burst just ended or began), or both. */
    private readonly kind: ArxInputs = "levels",
  ) {}

  /** Whether inputs have been given (the member can answer once fitted). */
  get active(): boolean {
    return this.width > 0 && this.lags > 0;
  }

  /** Stores the inputs known at step `i` (absolute index); a step without them is NaN. */
  push(i: number, x: ArrayLike<number> | undefined): void {
    if (x === undefined) {
      if (this.width <= 0) return;
      this.ring.fill(Number.NaN, (i % this.historySteps) * this.width, (i % this.historySteps + 1) * this.width);
    } else {
      if (this.width < 0) {
        this.width = x.length;
        this.ring = new Float64Array(this.historySteps * x.length).fill(Number.NaN);
      } else if (x.length !== this.width) {
        throw new RangeError(`exogenous inputs must keep their length (${this.width}), got ${x.length}`);
      }
      this.ring.set(Array.from(x), (i % this.historySteps) * this.width);
    }
    this.newest = i;
  }

  /** Inputs at absolute step i (must be within the kept history). */
  private raw = (i: number): Float64Array => this.ring.subarray((i % this.historySteps) * this.width, (i % this.historySteps + 1) * this.width);

  /**
   * The features at step i: the inputs and/or x[i] - x[i-1] (NaN at the oldest kept step). Why
   * changes: levels are non-zero at every step, and the fit's ridge, scaled by the LAD-weighted
   * diagonal, then shrinks a rare but exact effect (a step announced) to nothing.
   */
  private at = (i: number): ArrayLike<number> => {
    if (this.kind === "levels") return this.raw(i);
    const w = this.width;
    const base = this.kind === "both" ? w : 0;
    const out = (this.scratch[0] ??= new Float64Array(base + w));
    const x = this.raw(i);
    if (base > 0) out.set(x);
    const prev = i > 0 && i > this.newest - this.historySteps + 1 ? this.raw(i - 1) : null;
    for (let j = 0; j < w; j++) out[base + j] = prev ? x[j]! - prev[j]! : Number.NaN;
    return out;
  };

  private get features(): number {
    return this.kind === "both" ? 2 * this.width : this.width;
  }

  /** Fits one model per horizon on `hist` (oldest first; hist[0] is absolute step `offset`). */
  refit(hist: Float64Array, offset: number, horizons: readonly number[]): void {
    this.models = [];
    if (!this.active) return;
    const exogenous = { at: (p: number) => this.at(p + offset), width: this.features };
    for (const h of horizons) {
      const m = fitDirectAr(hist, h, this.lags, 0, { exogenous });
      if (m) this.models.push(m);
    }
  }

  /** Forecast `h` steps after step t (the newest), reading values by absolute index from `first`. */
  forecast(h: number, value: (i: number) => number, first: number, t: number): number {
    if (this.models.length === 0 || this.newest !== t) return Number.NaN;
    return interpolatedForecast(this.models, h, value, first, t, this.at);
  }
}
