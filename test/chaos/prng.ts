// A small seeded PRNG (mulberry32, as the example kernels use) with the few helpers the harness
// needs, so a run's choices (faults, targets, durations, workload) replay from its seed.
import { mulberry32 } from "../../kernels/reference/util.js";

export class Rng {
  private readonly next: () => number;
  constructor(readonly seed: number) {
    this.next = mulberry32(seed);
  }
  /** Uniform in [0, 1). */
  float(): number {
    return this.next() / 2 ** 32;
  }
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.float() * items.length)]!;
  }
  /** One of the keys, with probability proportional to its weight. */
  weighted<K extends string>(weights: Partial<Record<K, number>>): K {
    const entries = Object.entries(weights) as [K, number][];
    let r = this.float() * entries.reduce((s, [, w]) => s + w, 0);
    for (const [k, w] of entries) {
      r -= w;
      if (r < 0) return k;
    }
    return entries[entries.length - 1]![0];
  }
  /** An independent stream for one part of the harness (a client, the nemesis). */
  fork(salt: number): Rng {
    return new Rng((this.seed * 0x9e3779b1 + salt * 0x85ebca6b) | 0);
  }
}
