// The naive gate (scheduler/forecast/naive-gate.ts): per horizon, the last value answers while
// the model's recent error is above naive's, the model again once it is clearly below, and a
// ratio hovering between the two thresholds does not make the gate flap.
import { describe, expect, it } from "vitest";
import { NaiveGate } from "../../scheduler/forecast/naive-gate.js";
import { StepForecaster } from "../../scheduler/forecast/model.js";
import { ForecastOptionError } from "../../scheduler/forecast/options.js";
import { mulberry32 } from "../../kernels/reference/util.js";

const uniform = (seed: number) => {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
};

/**
 * Drives a one-horizon (h = 1) gate over a random walk: the model's forecast for step t + 1 is
 * the actual plus an error of `modelErr(t)` times naive's error at that step (random sign), so
 * the model / naive ratio is what `modelErr` says. Returns the gate state after every step.
 */
function drive(gate: NaiveGate, steps: number, modelErr: (t: number) => number, seed = 1): boolean[] {
  const r = uniform(seed);
  const ys: number[] = [10];
  for (let t = 1; t <= steps + 1; t++) ys.push(ys[t - 1]! + (r() - 0.5) * 2);
  const states: boolean[] = [];
  for (let t = 0; t < steps; t++) {
    gate.observe(t, ys[t]!);
    const naiveErr = Math.abs(ys[t + 1]! - ys[t]!);
    const sign = r() < 0.5 ? -1 : 1;
    gate.record(t, [ys[t + 1]! + sign * modelErr(t) * naiveErr], ys[t]!);
    states.push(gate.useModel(0));
  }
  return states;
}

const opts = { halfLifeSteps: 20, enter: 0.9, exit: 1, minWeight: 10 };

describe("naive gate", () => {
  it("falls back to naive when the model is worse and returns to the model when it is better", () => {
    const gate = new NaiveGate([1], opts);
    // 0..199 the model is better (0.5x), 200..399 worse (1.5x), 400..599 better again.
    const err = (t: number) => (t >= 200 && t < 400 ? 1.5 : 0.5);
    const s = drive(gate, 600, err);
    expect(s[150]).toBe(true);
    // Closed well within the worse stretch, and stays closed through its end.
    expect(s.slice(260, 400).every((x) => !x)).toBe(true);
    expect(s.slice(460, 600).every((x) => x)).toBe(true);
    expect(gate.ratio(0)).toBeLessThan(0.6);
    expect(gate.switches).toBe(2);
  });

  it("does not flap while the ratio hovers between its thresholds, where a gate without a band does", () => {
    // The model's error alternates between 0.8x and 1.1x of naive's every 10 steps: the recent
    // ratio (20-step half-life) wanders around 0.95, inside [enter 0.9, exit 1] nearly always.
    const err = (t: number) => (Math.floor(t / 10) % 2 === 0 ? 0.8 : 1.1);
    const banded = new NaiveGate([1], opts);
    drive(banded, 2000, err, 3);
    const noBand = new NaiveGate([1], { ...opts, enter: 0.95, exit: 0.95 });
    drive(noBand, 2000, err, 3);
    expect(noBand.switches).toBeGreaterThan(50);
    expect(banded.switches).toBeLessThanOrEqual(4);
  });

  it("keeps scoring the model while closed (shadow), so it can reopen", () => {
    const gate = new NaiveGate([1], opts);
    const s = drive(gate, 400, (t) => (t < 100 ? 2 : 0.3));
    expect(s[99]).toBe(false);
    expect(s[399]).toBe(true);
  });

  it("rejects enter above exit, naming the field", () => {
    expect(() => new NaiveGate([1], { ...opts, enter: 1.1, exit: 1 })).toThrow(ForecastOptionError);
    expect(() => new StepForecaster({ gateHalfLifeSteps: 10, gateEnter: 1.2, gateExit: 1 })).toThrow(/model\.gateEnter/);
  });
});

describe("naive gate in the StepForecaster", () => {
  // +1, -1, +1, ...: a level-only model forecasts about 0, so it beats the last value one step
  // ahead (error 1 against 2) and loses two steps ahead (1 against 0: the last value is exact).
  const alternating = (t: number) => (t % 2 === 0 ? 1 : -1);
  const base = { historySteps: 60, refitEverySteps: 20, minFitSteps: 12, seasonality: "none" as const, ensemble: false, fitHorizons: [1, 2] };

  it("answers with the last value at the horizon where the model loses, and with the model where it wins", () => {
    const gated = new StepForecaster({ ...base, gateHalfLifeSteps: 10 });
    const plain = new StepForecaster(base);
    for (let t = 0; t < 200; t++) {
      gated.observe(alternating(t));
      plain.observe(alternating(t));
    }
    expect(gated.forecast(2)).toBe(gated.lastValue);
    expect(gated.forecast(1)).not.toBe(gated.lastValue);
    expect(gated.forecast(1)).toBe(plain.forecast(1));
    // Without the gate the model's two-step forecast is not the last value: the gate made the difference.
    expect(Math.abs(plain.forecast(2) - plain.lastValue)).toBeGreaterThan(0.5);
    expect(gated.describe().selection).toEqual([
      { horizon: 1, member: "holt-winters" },
      { horizon: 2, member: "naive" },
    ]);
  });

  it("returns to the model once the series turns into a ramp the model follows", () => {
    const f = new StepForecaster({ ...base, gateHalfLifeSteps: 10 });
    for (let t = 0; t < 200; t++) f.observe(alternating(t));
    expect(f.forecast(2)).toBe(f.lastValue);
    for (let t = 0; t < 200; t++) f.observe(0.5 * t);
    expect(f.forecast(2)).not.toBe(f.lastValue);
    // Two steps on (0.5 x 201): closer than the last value (99.5), which is 1 off.
    expect(Math.abs(f.forecast(2) - 100.5)).toBeLessThan(0.5);
    expect(f.describe().selection.map((x) => x.member)).toEqual(["holt-winters", "holt-winters"]);
    // Closed and reopened at two steps; one step ahead may close while the model catches up with the change.
    expect(f.describe().gateSwitches).toBeGreaterThanOrEqual(2);
    expect(f.describe().gateSwitches).toBeLessThanOrEqual(4);
  });
});
