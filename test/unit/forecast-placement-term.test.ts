// The placement ranking's forecast term (NodeLoadModel.backgroundOver) and the live
// distx_forecast_error_ratio's pooling (pooledErrorRatio).
import { describe, expect, it } from "vitest";
import { NodeLoadModel } from "../../scheduler/placement/load-model.js";
import { pooledErrorRatio } from "../../scheduler/forecast/index.js";

const STEP = 1000;
/** Cron-like batch: 90 % of the cores for 12 s every 30 s, off otherwise (exact, as a cron job is). */
const batch = (tMs: number) => ((tMs / STEP) % 30 < 12 ? 0.9 : 0.05);
const feed = (m: NodeLoadModel, fromStep: number, toStep: number) => {
  for (let k = fromStep; k < toStep; k++) m.observe({ atMs: k * STEP, cpuUtilization: batch(k * STEP), agentCpuUtilization: 0, runningTasks: 0, queuedTasks: 0 });
};

describe("placement's forecast term", () => {
  it("sees a periodic batch coming: the mean background over the next span rises before the batch starts", () => {
    const withF = new NodeLoadModel({ stepMs: STEP, workers: 4, useForecast: true });
    const without = new NodeLoadModel({ stepMs: STEP, workers: 4, useForecast: false });
    // 8 periods of history, ending 4 s before a batch starts (step 236; the batch starts at 240).
    feed(withF, 0, 237);
    feed(without, 0, 237);
    expect(withF.lastBackground).toBeCloseTo(0.05);
    // Over the next 16 s, 12 of them in the batch: about (4 × 0.05 + 12 × 0.9) / 16 ≈ 0.69.
    expect(withF.backgroundOver(16 * STEP)).toBeGreaterThan(0.5);
    expect(withF.slowdownOver(4, 16 * STEP)).toBeGreaterThan(1.5);
    // A task that ends before the batch sees almost none of it.
    expect(withF.backgroundOver(2 * STEP)).toBeLessThan(0.2);
    // Without the forecast the latest sample stands for the whole span, as before.
    expect(without.backgroundOver(16 * STEP)).toBeCloseTo(0.05);
    expect(without.slowdownOver(4, 16 * STEP)).toBe(without.slowdown(4));
  });

  it("sees the end of a batch coming: the mean background falls while the batch still runs", () => {
    const m = new NodeLoadModel({ stepMs: STEP, workers: 4, useForecast: true });
    feed(m, 0, 250); // 10 s into a batch that ends at 252
    expect(m.lastBackground).toBeCloseTo(0.9);
    expect(m.backgroundOver(16 * STEP)).toBeLessThan(0.4);
  });

  it("answers the latest sample before any history, and for a zero span", () => {
    const m = new NodeLoadModel({ stepMs: STEP, workers: 4, useForecast: true });
    expect(m.backgroundOver(10 * STEP)).toBe(0);
    feed(m, 0, 1);
    expect(m.backgroundOver(0)).toBeCloseTo(0.9);
  });
});

describe("live forecast error ratio", () => {
  it("pools errors, so an idle node's noise-over-noise ratio does not dominate", () => {
    const busy = { count: 500, modelMae: 0.04, naiveMae: 0.05 }; // 0.8: beats naive
    const idle = { count: 500, modelMae: 0.003, naiveMae: 0.001 }; // 3.0 on a flat series
    expect((0.8 + 3) / 2).toBeGreaterThan(1); // what averaging the ratios reported
    expect(pooledErrorRatio([busy, idle])).toBeCloseTo((0.04 * 500 + 0.003 * 500) / (0.05 * 500 + 0.001 * 500));
    expect(pooledErrorRatio([busy, idle])).toBeLessThan(1);
  });
  it("leaves out entries with too few scored forecasts, and is NaN when none qualifies", () => {
    const busy = { count: 500, modelMae: 0.04, naiveMae: 0.05 };
    expect(pooledErrorRatio([busy, { count: 3, modelMae: 9, naiveMae: 0.1 }])).toBeCloseTo(0.8);
    expect(pooledErrorRatio([{ count: 3, modelMae: 1, naiveMae: 1 }])).toBeNaN();
    expect(pooledErrorRatio([])).toBeNaN();
    expect(pooledErrorRatio([{ count: 100, modelMae: 0.1, naiveMae: 0 }])).toBe(Number.POSITIVE_INFINITY);
  });
});
