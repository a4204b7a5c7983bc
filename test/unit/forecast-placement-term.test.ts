// The placement ranking's forecast term (NodeLoadModel.backgroundOver) and the live
// distx_forecast_error_ratio's pooling (pooledErrorRatio).
import { describe, expect, it } from "vitest";
import { NodeLoadModel, slowdownFactor } from "../../scheduler/placement/load-model.js";
import { ForecastPlacement } from "../../scheduler/placement/strategy.js";
import type { PlacementNode } from "../../scheduler/placement/index.js";
import { placementNode, wasmNeeds } from "../helpers/placement.js";
import { pooledErrorRatio } from "../../scheduler/forecast/index.js";

const STEP = 1000;
/** Cron-like batch: 90 % of the cores for 12 s every 30 s, off otherwise (exact, as a cron job is). */
const batch = (tMs: number) => ((tMs / STEP) % 30 < 12 ? 0.9 : 0.05);
const feed = (m: NodeLoadModel, fromStep: number, toStep: number) => {
  for (let k = fromStep; k < toStep; k++) m.observe({ atMs: k * STEP, cpuUtilization: batch(k * STEP), agentCpuUtilization: 0, runningTasks: 0, queuedTasks: 0 });
};

describe("placement's forecast term", () => {
  it("sees a periodic batch coming: the mean background over the next span rises before the batch starts", () => {
    const withF = new NodeLoadModel({ stepMs: STEP, workers: 4, useForecast: true, forecastOn: "all" });
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
    const m = new NodeLoadModel({ stepMs: STEP, workers: 4, useForecast: true, forecastOn: "all" });
    feed(m, 0, 250); // 10 s into a batch that ends at 252
    expect(m.lastBackground).toBeCloseTo(0.9);
    expect(m.backgroundOver(16 * STEP)).toBeLessThan(0.4);
  });

  it("answers the latest sample before any history, and for a zero span", () => {
    const m = new NodeLoadModel({ stepMs: STEP, workers: 4, useForecast: true, forecastOn: "all" });
    expect(m.backgroundOver(10 * STEP)).toBe(0);
    feed(m, 0, 1);
    expect(m.backgroundOver(0)).toBeCloseTo(0.9);
  });
});


describe("finish time along the forecast path (finishOver)", () => {
  it("a niced agent's task that meets the batch is stretched by it for the batch's length", () => {
    const m = new NodeLoadModel({ stepMs: STEP, workers: 4, useForecast: true, yields: true });
    const last = new NodeLoadModel({ stepMs: STEP, workers: 4, useForecast: false, yields: true });
    feed(m, 0, 237); // the batch (12 s at 90 %) starts 4 s after the latest sample
    feed(last, 0, 237);
    // 4 of ours, 8 s of work: 4 s at full speed, 12 s in the batch sharing 0.4 cores (10x
    // slower: 1.2 s of work), then the rest: about 18.8 s. The path is sampled at 1, 2, 4, 8,
    // 16 … steps ahead, so the answer is close, not exact.
    const t = m.finishOver(4, 0, 8 * STEP);
    expect(t).toBeGreaterThan(14 * STEP);
    expect(t).toBeLessThan(24 * STEP);
    // The latest sample (5 %: 3.8 cores left for 4 threads) says about 8.4 s.
    expect(last.finishOver(4, 0, 8 * STEP)).toBeLessThan(9 * STEP);
    // A short task that ends before the batch starts is not slowed.
    expect(m.finishOver(4, 0, 2 * STEP)).toBeLessThan(2.5 * STEP);
  });

  it("counts the queue wait: the queue drains into the batch, the task then runs inside it", () => {
    const m = new NodeLoadModel({ stepMs: STEP, workers: 4, useForecast: true, yields: true });
    feed(m, 0, 237);
    // 4 s of queue ahead: it drains into the batch, so the task starts well after 4 s.
    expect(m.finishOver(1, 4 * STEP, STEP)).toBeGreaterThan(m.finishOver(1, 0, STEP) + 6 * STEP);
  });

  it("without the forecast: (wait + run) x the slowdown of the latest sample, as before", () => {
    const m = new NodeLoadModel({ stepMs: STEP, workers: 4, useForecast: false, yields: true });
    feed(m, 0, 237);
    expect(m.finishOver(4, 0, 8 * STEP)).toBeCloseTo(8 * STEP * m.slowdown(4));
    expect(m.finishOver(4, 3 * STEP, 8 * STEP)).toBeCloseTo(11 * STEP * m.slowdown(4));
  });

  it("a niced agent yields: the host's load takes its cores first; a fair one shares thread for thread", () => {
    expect(slowdownFactor(8, 8, 0.9)).toBeCloseTo(1.9);
    expect(slowdownFactor(8, 8, 0.9, true)).toBeCloseTo(10); // 0.8 cores left for 8 threads
    expect(slowdownFactor(8, 1, 0.5, true)).toBe(1); // idle cores left
    // Fully busy host: a nice-19 thread still gets about 1/70 of a core, never nothing.
    expect(Number.isFinite(slowdownFactor(4, 1, 1, true))).toBe(true);
    expect(slowdownFactor(4, 1, 1, true)).toBeGreaterThan(50);
  });

  it("placement with the forecast keeps a niced node's tasks off a batch about to start; the last sample cannot", () => {
    const pick = (useForecast: boolean) => {
      const p = new ForecastPlacement<PlacementNode>({ stepMs: STEP, useForecast, loadModel: { yields: true } });
      const a = placementNode("a", { logicalCores: 4 });
      const b = placementNode("b", { logicalCores: 4 });
      p.addNode(a, 4);
      p.addNode(b, 4);
      for (let k = 0; k < 237; k++) {
        p.observeLoad("a", { atMs: k * STEP, cpuUtilization: batch(k * STEP), agentCpuUtilization: 0, runningTasks: 0, queuedTasks: 0 });
        p.observeLoad("b", { atMs: k * STEP, cpuUtilization: 0.3, agentCpuUtilization: 0, runningTasks: 0, queuedTasks: 0 });
      }
      // Teach both nodes the kernel's run time: 8 s on "a", 9 s on "b" (so ties go nowhere).
      p.observeRun("w", "k", "a", 8 * STEP);
      p.observeRun("w", "k", "b", 9 * STEP);
      return p.placeBatch({ kernelId: "k", needs: wasmNeeds() }, ["t1", "t2", "t3"]).map((n) => n.id);
    };
    expect(pick(false)).toEqual(["a", "a", "a"]); // "a" is idle now (5 %) and faster
    expect(pick(true)).toEqual(["b", "b", "b"]);
  });
});

describe("the forecast term, gated per node (forecastOn)", () => {
  it("by default applies on a node whose agent yields, and on a fair one only with forecastOn: all", () => {
    const fair = new NodeLoadModel({ stepMs: STEP, workers: 4, useForecast: true });
    const niced = new NodeLoadModel({ stepMs: STEP, workers: 4, useForecast: true, yields: true });
    const fairAll = new NodeLoadModel({ stepMs: STEP, workers: 4, useForecast: true, forecastOn: "all" });
    for (const m of [fair, niced, fairAll]) feed(m, 0, 237); // the batch starts in 4 s
    expect(fair.forecastTerm).toBe(false);
    expect(niced.forecastTerm).toBe(true);
    expect(fairAll.forecastTerm).toBe(true);
    // The fair node scores as without the forecast: the latest sample over the whole span ...
    expect(fair.backgroundOver(16 * STEP)).toBeCloseTo(fair.lastBackground);
    expect(fair.finishOver(4, 0, 8 * STEP)).toBeCloseTo(8 * STEP * fair.slowdown(4));
    // ... though its forecaster learnt the batch (fed either way), as the one with "all" shows.
    expect(fair.bg.completedSteps).toBeGreaterThan(200);
    expect(fair.background).toBeCloseTo(fair.lastBackground); // what placement uses
    expect(fair.backgroundForecast).toBeCloseTo(fairAll.background); // the forecast still shown (dashboard)
    expect(fairAll.backgroundOver(16 * STEP)).toBeGreaterThan(0.5);
    // The niced node sees the batch coming.
    expect(niced.finishOver(4, 0, 8 * STEP)).toBeGreaterThan(14 * STEP);
    // A node that registers again niced switches to the forecast at once (its history is kept).
    fair.yields = true;
    expect(fair.finishOver(4, 0, 8 * STEP)).toBeGreaterThan(14 * STEP);
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
