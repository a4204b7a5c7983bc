// The bursty load of bench/forecast/live.ts as a seeded plan, apart from the cluster so that it can
// be checked: bursts of 6–30 s at one or two jobs in flight, separated by idle gaps of 4–30 s.
import { mulberry32 } from "../../kernels/reference/util.js";

export interface LoadPhase {
  /** Seconds of back-to-back jobs. */
  burstS: number;
  /** Jobs kept in flight during the burst. */
  inFlight: 1 | 2;
  /** Idle seconds after the burst. */
  gapS: number;
}

/**
 * The plan's phases in order, without end. mulberry32 returns an unsigned 32-bit integer, not a
 * fraction: used as one (as live.ts did until 2026-11-29), the first burst lasted the whole run
 * at two jobs in flight and the bench's load had no idle gap at all.
 */
export function* loadPlan(seed: number): Generator<LoadPhase> {
  const next = mulberry32(seed);
  const uniform = () => next() / 4294967296;
  for (;;) {
    const burstS = 6 + uniform() * 24;
    const inFlight = uniform() < 0.5 ? 1 : 2;
    const gapS = 4 + uniform() * 26;
    yield { burstS, inFlight, gapS };
  }
}
