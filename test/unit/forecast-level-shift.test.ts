// Level shifts (issue #14): on/off heartbeat load steps from idle to busy and back. Holt-Winters
// with clipped residuals held its level back for many steps after such a step; with `shiftK` a
// run of large same-side residuals re-anchors the level, and noise must not.
import { describe, expect, it } from "vitest";
import { StepForecaster } from "../../scheduler/forecast/model.js";
import { NodeLoadForecaster } from "../../scheduler/forecast/node-forecaster.js";
import { DEFAULT_LOAD_FORECASTER, UTILIZATION_FORECASTER } from "../../scheduler/placement/load-model.js";
import { mulberry32 } from "../../kernels/reference/util.js";

function gaussian(seed: number): () => number {
  const next = mulberry32(seed);
  const u = () => Math.max(next() / 4294967296, 1e-12);
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

/** The utilisation forecaster's model settings (1 s heartbeats, no season), Holt-Winters alone, with or without the shift rule. */
const hwOnly = (shiftK: number) => new StepForecaster({ ...UTILIZATION_FORECASTER.model, ensemble: false, shiftK, fitHorizons: [1, 3, 6, 12] });

/** With auto seasonality, as the shared 5-minute series use it. */
const hwAuto = (shiftK: number) => new StepForecaster({ historySteps: 240, refitEverySteps: 60, minFitSteps: 12, ensemble: false, shiftK, fitHorizons: [1, 3, 6, 12] });

/** Steps after the step until forecast(1) is within `tol` of the new level (Infinity if never within `max`). */
function stepsToReach(model: StepForecaster, from: number, to: number, noise: () => number, tol: number, max = 60): number {
  for (let t = 0; t < 200; t++) model.observe(from + 0.02 * noise());
  for (let k = 1; k <= max; k++) {
    model.observe(to + 0.02 * noise());
    if (Math.abs(model.forecast(1) - to) < tol) return k;
  }
  return Number.POSITIVE_INFINITY;
}

describe("Holt-Winters level shifts", () => {
  it("reaches the new level within 2 steps of a step up or down; without the rule it lags", () => {
    for (const [from, to] of [[0.15, 0.95], [0.95, 0.1], [0.4, 0.7]] as const) {
      for (const make of [hwOnly, hwAuto]) {
        const withRule = stepsToReach(make(4), from, to, gaussian(7), 0.05);
        const without = stepsToReach(make(0), from, to, gaussian(7), 0.05);
        expect(withRule).toBeLessThanOrEqual(2);
        // The rule is what makes the difference: the clipped update alone takes far longer.
        expect(without).toBeGreaterThan(4);
      }
    }
  });

  it("takes no shift on a noisy plateau, on isolated spikes or on alternating outliers", () => {
    for (const model of [hwOnly(4), hwAuto(4)]) {
    const noise = gaussian(11);
    for (let t = 0; t < 3000; t++) {
      let y = 0.7 + 0.03 * noise();
      if (t % 97 === 50) y += 0.3; // one spike
      if (t % 131 === 60) y -= 0.25; // a dip and a spike in a row: opposite sides
      if (t % 131 === 61) y += 0.25;
      model.observe(y);
    }
    expect(model.describe().levelShifts).toBe(0);
    expect(Math.abs(model.forecast(1) - 0.7)).toBeLessThan(0.05);
    }
  });

  it("a heartbeat forecaster with the rule follows an idle-to-busy step within 2 heartbeats and counts the shift", () => {
    const noise = gaussian(3);
    const f = new NodeLoadForecaster({ stepMs: 1000, model: { ...DEFAULT_LOAD_FORECASTER.model, shiftK: 4 } });
    let t = 0;
    for (; t < 120; t++) f.observe(t * 1000, 0.05 + 0.01 * Math.abs(noise()));
    for (let k = 0; k < 2; k++, t++) f.observe(t * 1000, 1);
    expect(f.forecast(1000).mean).toBeGreaterThan(0.95);
    expect(f.describe().levelShifts).toBeGreaterThanOrEqual(1);
  });
});
