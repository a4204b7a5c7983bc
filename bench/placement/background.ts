// Background-load scenarios where the load is forecastable, for the forecast-vs-no-forecast
// comparison of the placement bench. Each replaces the nodes' `bg` (utilisation by others on the
// node's cores, 0..1) of the heterogeneous cluster; jobs are the same generator as the trace
// scenario. Small deterministic noise is added so the series are not perfectly clean.
//
// How the background slows our kernels is the node's `yields` (sim.ts runTime, slowdownFactor in
// scheduler/placement/load-model.ts): an agent at normal priority shares the cores thread for
// thread with the host's load, so a 90 % background slows a full node of ours at most 1.9x and
// a node with one of ours barely at all; an agent run niced (nice 19, as BOINC and most
// desktop-grid agents run, and what agent/load-sampler.ts accounts for) gets only the cores
// the host's load leaves, so the same background slows a full node of ours about 10x. The
// scenarios below are run both ways. Neither model counts caches, memory bandwidth or SMT.
import { Rng } from "../../scheduler/placement/strategy.js";
import type { SimNode } from "./sim.js";

export type BackgroundKind = "periodic-batch" | "diurnal" | "owner-ramp";
export const BACKGROUND_KINDS: readonly BackgroundKind[] = ["periodic-batch", "diurnal", "owner-ramp"];

const clamp01 = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);

/** Hash noise in [-1, 1) for (node, whole second): deterministic, no state. */
function noise(seed: number, t: number): number {
  let x = (Math.floor(t / 1000) * 2654435761 + seed * 40503) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 2246822519) >>> 0;
  x ^= x >>> 13;
  return (x / 4294967296) * 2 - 1;
}

/**
 * periodic-batch: every other node runs a cron-like batch, 40 s on at 90 % of its cores
 *   every 90 s, each with its own phase; the rest carry light load (10 %).
 * diurnal: every node's load follows a compressed "day" (160 s), 5-85 %, phases spread.
 * owner-ramp: one node in three belongs to an owner whose load ramps from 5 % to 95 % over
 *   60 s, holds 100 s, and drops, every 300 s from its own start; the rest carry 10 %.
 */
export function backgroundFor(kind: BackgroundKind, index: number, rng: Rng): (tMs: number) => number {
  const seed = index + 1;
  const jitter = (t: number) => 0.03 * noise(seed, t);
  switch (kind) {
    case "periodic-batch": {
      if (index % 2 === 1) return (t) => clamp01(0.1 + jitter(t));
      const period = 90_000;
      const phase = rng.int(period);
      return (t) => clamp01(((t + phase) % period < 40_000 ? 0.9 : 0.1) + jitter(t));
    }
    case "diurnal": {
      const phase = rng.next() * 2 * Math.PI;
      return (t) => clamp01(0.45 + 0.4 * Math.sin((2 * Math.PI * t) / 160_000 + phase) + jitter(t));
    }
    case "owner-ramp": {
      if (index % 3 !== 0) return (t) => clamp01(0.1 + jitter(t));
      const cycle = 300_000;
      const start = rng.int(cycle);
      return (t) => {
        const x = (((t - start) % cycle) + cycle) % cycle;
        const level = x < 60_000 ? 0.05 + (0.9 * x) / 60_000 : x < 160_000 ? 0.95 : 0.05;
        return clamp01(level + jitter(t));
      };
    }
  }
}

/** Gives every node of `nodes` the background of `kind` (seeded per scenario seed). */
export function withBackground(nodes: SimNode[], kind: BackgroundKind, seed: number): SimNode[] {
  const rng = new Rng(seed * 15485863 + 17);
  nodes.forEach((n, i) => (n.bg = backgroundFor(kind, i, rng)));
  return nodes;
}
