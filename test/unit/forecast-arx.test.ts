// The exogenous ARX member (scheduler/forecast/arx-member.ts): inputs that announce the series'
// steps let it beat the last value, inputs that carry nothing cost the ensemble little, and a
// forecaster never given inputs forecasts exactly as before (the background and queue
// forecasters, the shared-series bench).
import { describe, expect, it } from "vitest";
import { NodeLoadForecaster, pooledErrorRatio } from "../../scheduler/forecast/index.js";
import { NodeLoadModel, UTILIZATION_FORECASTER, UTILIZATION_INPUTS } from "../../scheduler/placement/load-model.js";
import { replayScore } from "../../bench/forecast/live-replay.js";
import type { RecordedLoad } from "../../scheduler/placement/load-recorder.js";
import { mulberry32 } from "../../kernels/reference/util.js";

const uniform = (seed: number) => {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
};

/** On/off load: bursts at 0.9 and gaps at 0.2 of random lengths (4–19 steps), small noise. */
function bursts(steps: number, seed: number): { y: number[]; on: boolean[] } {
  const r = uniform(seed);
  const on: boolean[] = [];
  let state = false;
  while (on.length < steps + 20) {
    const len = 4 + Math.floor(r() * 16);
    for (let i = 0; i < len; i++) on.push(state);
    state = !state;
  }
  const y = on.slice(0, steps).map((b) => (b ? 0.9 : 0.2) + (r() - 0.5) * 0.04);
  return { y, on };
}

const HORIZONS = [1, 3, 6, 12].map((k) => k * 1000);
const model = { historySteps: 240, refitEverySteps: 60, minFitSteps: 12, seasonality: "none" as const, selectionHalfLifeSteps: 30 };

function score(y: number[], inputs?: (t: number) => number[], arxInputs: "levels" | "changes" | "both" = "levels"): { pooled: number; h1: number; f: NodeLoadForecaster } {
  const f = new NodeLoadForecaster({ stepMs: 1000, horizonsMs: HORIZONS, model: { ...model, arxInputs } });
  y.forEach((v, t) => f.observe(t * 1000, v, inputs?.(t)));
  const acc = f.accuracy();
  return { pooled: pooledErrorRatio(acc), h1: acc[0]!.ratio, f };
}

describe("exogenous ARX member", () => {
  it("beats the last value when the inputs announce the step (a task assigned one step ahead)", () => {
    const { y, on } = bursts(600, 7);
    // What the scheduler knows at t: whether the node will be busy at t + 1 (assigned, queued).
    const announced = score(y, (t) => [on[t + 1] ? 1 : 0, on[t] ? 1 : 0], "changes");
    const alone = score(y);
    expect(announced.h1).toBeLessThan(0.6);
    expect(announced.h1).toBeLessThan(alone.h1 * 0.7);
    expect(announced.pooled).toBeLessThan(1);
    expect(announced.pooled).toBeLessThan(alone.pooled);
    expect(announced.f.describe().selection.find((s) => s.horizon === 1)?.member).toBe("direct-arx");
  });

  it("costs little when the inputs carry no information", () => {
    for (const kind of ["levels", "changes", "both"] as const) {
      for (const seed of [3, 11, 19]) {
        const { y } = bursts(600, seed);
        const r = uniform(seed + 1000);
        const noise = score(y, () => [r(), Math.floor(r() * 3)], kind);
        const alone = score(y);
        expect(noise.pooled).toBeLessThan(alone.pooled * 1.03);
      }
    }
  });

  it("forecasts exactly as before when never given inputs, and rejects inputs that change length", () => {
    const { y } = bursts(300, 5);
    const a = score(y).f;
    const b = score(y, () => []).f; // empty inputs: nothing to regress on, the member stays out
    for (const h of HORIZONS) expect(b.forecast(h).mean).toBe(a.forecast(h).mean);
    expect(b.accuracy()).toEqual(a.accuracy());
    const f = new NodeLoadForecaster({ stepMs: 1000 });
    f.observe(0, 0.5, [1, 2]);
    f.observe(1000, 0.5, [1, 2]);
    expect(() => {
      f.observe(2000, 0.5, [1]);
      f.observe(3000, 0.5, [1]);
    }).toThrow(RangeError);
  });

  it("is fed UTILIZATION_INPUTS by the load model unless told not to, and replays to the same pooled ratio as the model's", () => {
    const recs: RecordedLoad[] = [];
    const { y, on } = bursts(400, 9);
    y.forEach((cpu, t) => recs.push({ t: 1000 * t, node: "a", cpu, agentCpu: on[t] ? 0.3 : 0, running: on[t] ? 1 : 0, queued: on[t + 1] ? 1 : 0 }));
    const observe = (m: NodeLoadModel) =>
      recs.forEach((r) => m.observe({ atMs: r.t, cpuUtilization: r.cpu, agentCpuUtilization: r.agentCpu, runningTasks: r.running, queuedTasks: r.queued }));
    const fed = new NodeLoadModel({ stepMs: 1000, workers: 1, useForecast: true });
    const plain = new NodeLoadModel({ stepMs: 1000, workers: 1, useForecast: true, utilizationInputs: null });
    observe(fed);
    observe(plain);
    expect(replayScore(recs, 1000, UTILIZATION_FORECASTER, 280_000, Infinity, UTILIZATION_INPUTS).all).toBeCloseTo(pooledErrorRatio(fed.util.accuracy()), 12);
    expect(replayScore(recs, 1000, UTILIZATION_FORECASTER, 280_000).all).toBeCloseTo(pooledErrorRatio(plain.util.accuracy()), 12);
    // Fed by default, not by the caller: the forecasts differ.
    expect(pooledErrorRatio(fed.util.accuracy())).not.toBe(pooledErrorRatio(plain.util.accuracy()));
    // Background and queue forecasters never get inputs: the same either way.
    expect(fed.bg.accuracy()).toEqual(plain.bg.accuracy());
    expect(fed.queue.accuracy()).toEqual(plain.queue.accuracy());
  });
});
