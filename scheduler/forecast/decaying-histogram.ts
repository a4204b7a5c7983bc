/**
 * A histogram with exponentially decaying sample weights (the structure used by
 * Borg Autopilot and the Kubernetes VPA recommender): a sample added at time t
 * weighs 2^((t - now) / halfLife) at time `now`, so old values fade out and a
 * percentile reflects recent behaviour.
 *
 * Buckets are logarithmic on each sign: |v| in [minBucket*r^(k-1), minBucket*r^k)
 * falls into bucket +-k, and |v| < minBucket into bucket 0, so the relative
 * resolution is `ratio` (default 5%) over any scale - CPU fractions, percent or
 * queue lengths - and signed values (residuals) are supported. Storage is a
 * sparse map, a few hundred buckets at most.
 *
 * Decay is implemented like the VPA: instead of shrinking every bucket on each
 * add, new samples get a growing weight 2^((t - ref) / halfLife); when that
 * exponent gets large all weights are rescaled and `ref` moves (exact, just a
 * change of unit). Deterministic.
 */
import { checkKnownKeys, checkPositive, checkRange } from "./options.js";

export interface DecayingHistogramOptions {
  /** Half-life of a sample's weight, in the same unit as the add() times (required). */
  halfLife: number;
  /** Bucket growth ratio (default 1.05). */
  ratio?: number;
  /** Magnitude below which values share the zero bucket (default 1e-4). */
  minBucket?: number;
}

const KEYS = ["halfLife", "ratio", "minBucket"] as const;
const RESCALE_EXPONENT = 64;

export class DecayingHistogram {
  readonly halfLife: number;
  readonly ratio: number;
  readonly minBucket: number;
  private readonly logRatio: number;
  private readonly buckets = new Map<number, number>();
  private refTime: number | null = null;
  private lastTime = Number.NEGATIVE_INFINITY;
  private total = 0; // in current units (relative to refTime)

  constructor(options: DecayingHistogramOptions, owner = "histogram") {
    const o = checkKnownKeys(owner, options, KEYS);
    if (o.halfLife === undefined) checkPositive(`${owner}.halfLife`, undefined);
    this.halfLife = checkPositive(`${owner}.halfLife`, o.halfLife);
    this.ratio = o.ratio === undefined ? 1.05 : checkRange(`${owner}.ratio`, o.ratio, 1, 10, { minExclusive: true });
    this.minBucket = o.minBucket === undefined ? 1e-4 : checkPositive(`${owner}.minBucket`, o.minBucket);
    this.logRatio = Math.log(this.ratio);
  }

  private bucketOf(v: number): number {
    const a = Math.abs(v);
    if (a < this.minBucket) return 0;
    const k = 1 + Math.floor(Math.log(a / this.minBucket) / this.logRatio);
    return v > 0 ? k : -k;
  }

  /** Representative value of a bucket: its upper edge (conservative for high percentiles). */
  private valueOf(k: number): number {
    if (k === 0) return 0;
    if (k > 0) return this.minBucket * Math.pow(this.ratio, k);
    return -this.minBucket * Math.pow(this.ratio, -k - 1);
  }

  /** Adds value v observed at time t (times must not go backwards by more than tolerated; older samples just weigh less). */
  add(v: number, t: number, weight = 1): void {
    if (!Number.isFinite(v) || !Number.isFinite(t) || !(weight >= 0)) {
      throw new RangeError(`histogram sample must be finite with weight >= 0 (value ${v}, time ${t}, weight ${weight})`);
    }
    if (this.refTime === null) this.refTime = t;
    let exp = (t - this.refTime) / this.halfLife;
    if (exp > RESCALE_EXPONENT) {
      const factor = Math.pow(2, -exp);
      for (const [k, w] of this.buckets) {
        const nw = w * factor;
        if (nw < 1e-12) this.buckets.delete(k);
        else this.buckets.set(k, nw);
      }
      this.total *= factor;
      this.refTime = t;
      exp = 0;
    }
    const w = weight * Math.pow(2, exp);
    const k = this.bucketOf(v);
    this.buckets.set(k, (this.buckets.get(k) ?? 0) + w);
    this.total += w;
    if (t > this.lastTime) this.lastTime = t;
  }

  /** Total decayed weight at time `t` (default: the latest add time). */
  weight(t = this.lastTime): number {
    if (this.refTime === null) return 0;
    return this.total * Math.pow(2, -(t - this.refTime) / this.halfLife);
  }

  get isEmpty(): boolean {
    return this.total <= 0;
  }

  /** The q-quantile (0 <= q <= 1) of the decayed distribution; NaN when empty. */
  percentile(q: number): number {
    checkRange("percentile.q", q, 0, 1);
    if (this.total <= 0) return Number.NaN;
    const keys = [...this.buckets.keys()].sort((a, b) => a - b);
    const target = q * this.total;
    let acc = 0;
    for (const k of keys) {
      acc += this.buckets.get(k)!;
      if (acc >= target && acc > 0) return this.valueOf(k);
    }
    return this.valueOf(keys[keys.length - 1]!);
  }

  clear(): void {
    this.buckets.clear();
    this.total = 0;
    this.refTime = null;
    this.lastTime = Number.NEGATIVE_INFINITY;
  }
}
