// Predicted-saturation alerts, replayed: load shapes and real traces go through the scheduler's
// real PlacementController (NodeRegistry heartbeats, the node forecaster, its alert state) on a
// driven clock, one heartbeat per step. For every shape it measures what an operator gets:
//   * lead time: the prediction's time before the first sample at or over the threshold;
//   * after the fact: a prediction raised at or after that sample (must be 0);
//   * false alerts: predictions not followed by a crossing within the horizon (+ 2 steps);
//   * resolution: steps from the forecast dropping below the threshold to the withdrawal.
// The baseline, in the same run on the same samples, is a plain threshold rule without a forecast
// ("warn when a sample reaches `warnAt`, two samples in a row"), as an operator would write it.
//
// Settings (bound, horizon) are chosen on the training part (shape seeds 1-4, the first half of
// each trace) and reported on the held-out part (seeds 5-8, second halves) as well.
//   node dist/bench/alerts/replay.js [--quick]
import { PlacementController, type PredictedSaturation, type SaturationWithdrawn } from "../../scheduler/placement/controller.js";
import { NodeRegistry } from "../../scheduler/registry.js";
import type { HardwareProfile } from "../../common/types.js";
import { mulberry32 } from "../../kernels/reference/util.js";
import { TrendDetector, trendOptionsForStep } from "../../scheduler/forecast/trend-detector.js";

const STEP_MS = 1000;
/** The heartbeat of the "fastboot" shapes (the solo e2e case's). */
export const FAST_STEP_MS = 500;
const THRESHOLD = 0.9;
/** Steps of one noisy plateau (20 min of 1 s heartbeats: the replay costs about 5 ms a step on a busy 2-core machine). */
export const PLATEAU_STEPS = Number(process.env.DISTX_BENCH_PLATEAU_STEPS ?? 1200);

export interface Settings {
  bound: "upper" | "mean" | "trend";
  horizonMs: number;
}

export interface Outcome {
  crossings: number;
  /** Lead time (ms) of each crossing that had a prediction before it; missing ones count as 0 in `missed`. */
  leads: number[];
  missed: number;
  afterTheFact: number;
  falseAlerts: number;
  alerts: number;
  /** Worst delay (steps) from the forecast dropping below the threshold to the withdrawal. */
  worstResolveSteps: number;
  steps: number;
}

/** Uniform in [0, 1) from the project's one seeded PRNG. */
function uniform(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
}
const gauss = (r: () => number) => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
const clamp01 = (x: number) => Math.min(1, Math.max(0, x));

/** A load shape: per-step utilisation. */
export function shape(kind: string, seed: number): number[] {
  const r = uniform(seed * 7919 + kind.length * 104729);
  const noise = (sd: number) => sd * gauss(r);
  const base = 0.25 + 0.1 * r();
  const out: number[] = [];
  const warm = 120 + Math.floor(60 * r());
  const rise = (seconds: number) => {
    const n = Math.max(1, Math.round(seconds));
    for (let i = 1; i <= n; i++) out.push(clamp01(base + (1 - base) * (i / n) + noise(0.02)));
  };
  const m = /^(step|ramp|plateau|boot|fastboot)(\d+)?$/.exec(kind);
  if (!m) throw new Error(`unknown shape ${kind}`);
  if (m[1] === "boot") {
    // A node's first minute (issue #14): an agent's start-up swings 0-85 % for 8 samples, then
    // 40 calm ones, then a ramp: the noise scale must not keep the start-up in it.
    for (let i = 0; i < 8; i++) out.push(0.85 * r()); // below the threshold: not a crossing to predict
    for (let i = 0; i < 40; i++) out.push(clamp01(base + noise(0.02)));
    rise(Number(m[2]));
    for (let i = 0; i < 60; i++) out.push(clamp01(0.97 + noise(0.02)));
    for (let i = 0; i < 90; i++) out.push(clamp01(base + noise(0.02)));
    return out;
  }
  if (m[1] === "fastboot") {
    // The same at 500 ms heartbeats (samples, not seconds; FAST_STEP_MS), the solo e2e case's
    // layout: 4 s of start-up, a 20 s calm baseline, a ramp over n s; a 500 ms sample wobbles more
    // (sd 0.03, as recorded in that case's calm baseline).
    const k = 1000 / FAST_STEP_MS;
    for (let i = 0; i < 4 * k; i++) out.push(0.85 * r());
    for (let i = 0; i < 20 * k; i++) out.push(clamp01(base + noise(0.03)));
    const n = Number(m[2]) * k;
    for (let i = 1; i <= n; i++) out.push(clamp01(base + (1 - base) * (i / n) + noise(0.03)));
    for (let i = 0; i < 60 * k; i++) out.push(clamp01(0.97 + noise(0.03)));
    for (let i = 0; i < 90 * k; i++) out.push(clamp01(base + noise(0.03)));
    return out;
  }
  for (let i = 0; i < warm; i++) out.push(clamp01(base + noise(0.02)));
  if (m[1] === "plateau") {
    // A node wobbling around a level with no trend, for `hours` of steps (false alerts only).
    const level = Number(m[2]) / 100;
    let ar = 0;
    for (let i = 0; i < PLATEAU_STEPS; i++) {
      ar = 0.8 * ar + noise(0.03); // correlated wobble, sd about 0.05
      out.push(clamp01(level + ar));
    }
    return out;
  }
  if (m[1] === "step") out.push(clamp01(0.97 + noise(0.01)));
  else rise(Number(m[2]));
  for (let i = 0; i < 60; i++) out.push(clamp01(0.97 + noise(0.02)));
  for (let i = 0; i < 90; i++) out.push(clamp01(base + noise(0.02)));
  return out;
}

const profile = { hostname: "h", workers: 2, cpu: { model: "x", logicalCores: 2 }, memoryBytes: String(2 ** 33), gpus: [], kernelKinds: ["KERNEL_KIND_WASM"], labels: {} } as unknown as HardwareProfile;

/** Replays `series` through a real controller; scores its node predictions. */
export function replay(series: number[], s: Settings): Outcome {
  const registry = new NodeRegistry({ agentTimeoutMs: 3_600_000 * 48, prefetchPerWorker: 2 });
  let now = 0;
  const raised: PredictedSaturation[] = [];
  const withdrawn: SaturationWithdrawn[] = [];
  const controller = new PlacementController(
    { placement: "forecast", heartbeatIntervalMs: STEP_MS, saturationThreshold: THRESHOLD, saturationHorizonMs: s.horizonMs, saturationBound: s.bound, saturationCooldownMs: 0, rebalance: false },
    registry,
    { saturation: (e) => raised.push(e), saturationWithdrawn: (e) => withdrawn.push(e), queuedOn: () => [], takeBack: () => {} },
    () => now,
  );
  const node = registry.register(profile);
  registry.attachSession(node.id, () => {});
  const crossings: number[] = [];
  let over = false;
  let standing: PredictedSaturation | undefined;
  let droppedAtStep = -1;
  let worstResolve = 0;
  let afterTheFact = 0;
  // An independent detector on the same samples: when its condition fails, the controller's must withdraw.
  const twin = s.bound === "trend" ? new TrendDetector(trendOptionsForStep(STEP_MS)) : undefined;
  for (let i = 0; i < series.length; i++) {
    const u = series[i]!;
    if (u >= THRESHOLD && !over) crossings.push(now);
    over = u >= THRESHOLD;
    const nRaised = raised.length;
    const nWithdrawn = withdrawn.length;
    twin?.observe(now, u);
    registry.heartbeat(node.id, { cpuUtilization: u, agentCpuUtilization: 0, memoryUsedBytes: "0", runningTasks: 0, queuedTasks: 0, gpuUtilization: -1, sampledAtMs: now }, false);
    for (const e of raised.slice(nRaised)) {
      if (e.scope !== "node") continue;
      standing = e;
      droppedAtStep = -1;
      // After the fact: raised while the node is already over the threshold.
      if (over) afterTheFact++;
    }
    if (standing && withdrawn.slice(nWithdrawn).some((e) => e.scope === "node")) {
      if (droppedAtStep >= 0) worstResolve = Math.max(worstResolve, i - droppedAtStep);
      standing = undefined;
    } else if (standing && droppedAtStep < 0) {
      if (twin) {
        if (u < THRESHOLD && twin.crossingAt(THRESHOLD, s.horizonMs) === null) droppedAtStep = i;
      } else {
        const util = controller.strategy.loadModel?.(node.id)?.util;
        if (util && s.bound !== "trend" && util.saturationEta(THRESHOLD, s.horizonMs, s.bound) === null) droppedAtStep = i;
      }
    }
    now += STEP_MS;
  }
  const nodeRaised = raised.filter((e) => e.scope === "node");
  // Each crossing's lead: the earliest prediction within the horizon before it (and not after).
  const leads: number[] = [];
  let missed = 0;
  for (const c of crossings) {
    const before = nodeRaised.filter((e) => e.atMs < c && c - e.atMs <= s.horizonMs + 2 * STEP_MS);
    if (before.length) leads.push(c - Math.min(...before.map((e) => e.atMs)));
    else missed++;
  }
  const falseAlerts = nodeRaised.filter((e) => !crossings.some((c) => c >= e.atMs && c - e.atMs <= s.horizonMs + 2 * STEP_MS)).length;
  return { crossings: crossings.length, leads, missed, afterTheFact, falseAlerts, alerts: nodeRaised.length, worstResolveSteps: worstResolve, steps: series.length };
}

/** The baseline: warn when a sample reaches `warnAt`, two in a row; re-arm below it. */
export function thresholdRule(series: number[], warnAt: number, horizonMs: number): Outcome {
  const crossings: number[] = [];
  const alerts: number[] = [];
  let over = false;
  let run = 0;
  let armed = true;
  for (let i = 0; i < series.length; i++) {
    const u = series[i]!;
    const t = i * STEP_MS;
    if (u >= THRESHOLD && !over) crossings.push(t);
    over = u >= THRESHOLD;
    run = u >= warnAt ? run + 1 : 0;
    if (run >= 2 && armed) {
      alerts.push(t);
      armed = false;
    }
    if (u < warnAt) armed = true;
  }
  const leads: number[] = [];
  let missed = 0;
  for (const c of crossings) {
    const before = alerts.filter((a) => a < c && c - a <= horizonMs + 2 * STEP_MS);
    if (before.length) leads.push(c - Math.min(...before));
    else missed++;
  }
  const afterTheFact = alerts.filter((a) => series[a / STEP_MS]! >= THRESHOLD).length;
  const falseAlerts = alerts.filter((a) => !crossings.some((c) => c >= a && c - a <= horizonMs + 2 * STEP_MS)).length;
  return { crossings: crossings.length, leads, missed, afterTheFact, falseAlerts, alerts: alerts.length, worstResolveSteps: 0, steps: series.length };
}
