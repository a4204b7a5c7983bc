import { describe, expect, it } from "vitest";
import { OnlineAccuracy } from "../../scheduler/forecast/accuracy.js";
import { ResidualAlerter } from "../../scheduler/forecast/alerts.js";
import { DecayingHistogram } from "../../scheduler/forecast/decaying-histogram.js";
import { fitHoltWinters, DEFAULT_GRID } from "../../scheduler/forecast/holt-winters.js";
import { StepForecaster } from "../../scheduler/forecast/model.js";
import { NodeLoadForecaster } from "../../scheduler/forecast/node-forecaster.js";
import { ForecastOptionError } from "../../scheduler/forecast/options.js";
import { detectPeriod } from "../../scheduler/forecast/period.js";
import { parseTimestamp, parseTraceCsv, TraceFormatError } from "../../bench/forecast/csv.js";
import { scoreAlerts } from "../../bench/forecast/score.js";
import { mulberry32 } from "../../kernels/reference/util.js";

/** Deterministic PRNG (mulberry32) and a standard normal from it. */
function rng(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
}
function gauss(r: () => number): number {
  const u = Math.max(r(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
}
function seasonalSeries(n: number, period: number, opts: { trend?: number; amp?: number; noise?: number; seed?: number } = {}): number[] {
  const r = rng(opts.seed ?? 1);
  const out: number[] = [];
  for (let t = 0; t < n; t++) {
    const s = (opts.amp ?? 1) * (Math.sin((2 * Math.PI * t) / period) + 0.5 * Math.sin((4 * Math.PI * t) / period));
    out.push(10 + (opts.trend ?? 0) * t + s + (opts.noise ?? 0.2) * gauss(r));
  }
  return out;
}

describe("period detection", () => {
  it("finds the period of a noisy seasonal series", () => {
    expect(detectPeriod(seasonalSeries(600, 24)).period).toBe(24);
    expect(detectPeriod(seasonalSeries(600, 12, { trend: 0.01, seed: 7 })).period).toBe(12);
  });

  it("finds no season in white noise or a random walk", () => {
    const r = rng(3);
    const noise = Array.from({ length: 600 }, () => gauss(r));
    expect(detectPeriod(noise).period).toBeNull();
    let x = 0;
    const walk = Array.from({ length: 600 }, () => (x += gauss(r)));
    expect(detectPeriod(walk).period).toBeNull();
  });

  it("is not fooled by a few isolated spikes", () => {
    const r = rng(5);
    const v = Array.from({ length: 600 }, () => 1 + 0.05 * gauss(r));
    for (const i of [100, 167, 234, 301, 368]) v[i] = 50; // spikes 67 apart
    expect(detectPeriod(v).period).toBeNull();
  });
});

describe("Holt-Winters", () => {
  it("beats the naive forecast on a seasonal series with a trend", () => {
    const data = seasonalSeries(1200, 24, { trend: 0.005, amp: 2, noise: 0.3, seed: 11 });
    const model = new StepForecaster({ ensemble: false, historySteps: 480, refitEverySteps: 96 });
    const acc = new OnlineAccuracy([1, 6, 12], 300);
    data.forEach((y, t) => {
      acc.observe(t, y);
      model.observe(y);
      acc.record(t, [1, 6, 12].map((h) => model.forecast(h)), y);
    });
    expect(model.describe().period).toBe(24);
    for (const r of acc.results()) {
      expect(r.count).toBeGreaterThan(800);
      expect(r.ratio).toBeLessThan(0.6);
    }
  });

  it("fits a trend to a straight line (undamped grid exactly, damped grid better than naive)", () => {
    const line = Array.from({ length: 200 }, (_, t) => 5 + 0.1 * t);
    const cfg = { robustK: 0, scaleAlpha: 0.05 };
    const linear = fitHoltWinters(line, 0, { ...DEFAULT_GRID, phi: [1] }, cfg, [1, 6], 10);
    expect(linear.params.beta).toBeGreaterThan(0);
    expect(linear.loss).toBeLessThan(0.05);
    const damped = fitHoltWinters(line, 0, DEFAULT_GRID, cfg, [1, 6], 10);
    expect(damped.params.beta).toBeGreaterThan(0);
    expect(damped.loss).toBeLessThan(0.5);
  });
});

describe("ensemble selection when the season goes away", () => {
  it("never selects (or describes) the seasonal-naive member once a refit finds no season, and answers with the member it describes", () => {
    // A clean square wave (period 12) that turns into noise: the refit at step ~600 drops the season.
    const r = rng(7);
    const series = (i: number) => (i < 480 ? (i % 12 < 6 ? 0.8 : 0.2) : 0.5 + 0.1 * (r() - 0.5));
    const model = new StepForecaster({ historySteps: 240, refitEverySteps: 48 });
    let seasonless = 0;
    const wrong: string[] = [];
    for (let i = 0; i < 1400; i++) {
      model.observe(series(i));
      if (i < 100) continue;
      const d = model.describe();
      if (d.period !== null) continue;
      seasonless++;
      for (const { horizon, member } of d.selection) {
        if (member === "seasonal-naive") wrong.push(`step ${i} h=${horizon}: seasonal-naive selected without a season`);
        // What describe() says answers is what forecast() answers with.
        if (member === "naive" && model.forecast(horizon) !== model.lastValue) wrong.push(`step ${i} h=${horizon}: described naive, forecast differs`);
      }
    }
    expect(seasonless).toBeGreaterThan(500);
    expect(wrong.slice(0, 5)).toEqual([]);
  });
});

describe("decaying histogram", () => {
  it("gives percentiles within the bucket resolution", () => {
    const h = new DecayingHistogram({ halfLife: 1e9 });
    for (let v = 1; v <= 100; v++) h.add(v, 0);
    expect(h.percentile(0.95)).toBeGreaterThanOrEqual(95);
    expect(h.percentile(0.95)).toBeLessThanOrEqual(95 * 1.05 + 1e-9);
    expect(h.percentile(0.5)).toBeGreaterThanOrEqual(50);
    expect(h.percentile(0.5)).toBeLessThanOrEqual(50 * 1.05 + 1e-9);
  });

  it("lets old values decay", () => {
    const h = new DecayingHistogram({ halfLife: 10 });
    for (let i = 0; i < 100; i++) h.add(100, 0); // old, high
    expect(h.percentile(0.95)).toBeGreaterThanOrEqual(100);
    for (let i = 0; i < 100; i++) h.add(1, 100); // 10 half-lives later, low
    // The old block now weighs 2^-10 of the new one: every high percentile reflects the new values.
    expect(h.percentile(0.95)).toBeLessThan(1.06);
    expect(h.weight(100)).toBeCloseTo(100 + 100 / 1024, 6);
    // A much later time rescales internally without changing the answer.
    h.add(1, 5000);
    expect(h.percentile(0.95)).toBeLessThan(1.06);
  });

  it("handles signed values", () => {
    const h = new DecayingHistogram({ halfLife: 1e9 });
    for (let v = -50; v <= 49; v++) h.add(v, 0);
    expect(h.percentile(0.05)).toBeLessThan(-40);
    expect(h.percentile(0.95)).toBeGreaterThan(40);
  });
});

describe("online accuracy", () => {
  it("matches a hand computation", () => {
    const acc = new OnlineAccuracy([1, 2]);
    const y = [10, 12, 11, 15];
    // Forecasts made at each step for h = 1 and h = 2 (model is "last value + 1").
    for (let t = 0; t < y.length; t++) {
      acc.observe(t, y[t]!);
      acc.record(t, [y[t]! + 1, y[t]! + 1], y[t]!);
    }
    const [h1, h2] = acc.results();
    // h=1: targets 12, 11, 15 from origins 10, 12, 11: model |12-11|+|11-13|+|15-12| = 1+2+3; naive 2+1+4.
    expect(h1!.count).toBe(3);
    expect(h1!.modelMae).toBeCloseTo(6 / 3, 12);
    expect(h1!.naiveMae).toBeCloseTo(7 / 3, 12);
    expect(h1!.ratio).toBeCloseTo(6 / 7, 12);
    // h=2: targets 11, 15 from origins 10, 12: model |11-11|+|15-13| = 0+2; naive 1+3.
    expect(h2!.count).toBe(2);
    expect(h2!.modelMae).toBeCloseTo(1, 12);
    expect(h2!.naiveMae).toBeCloseTo(2, 12);
    expect(h2!.ratio).toBeCloseTo(0.5, 12);
  });

  it("ignores forecasts made during the warm-up", () => {
    const acc = new OnlineAccuracy([1], 2);
    [1, 2, 3, 4].forEach((v, t) => {
      acc.observe(t, v);
      acc.record(t, [v], v);
    });
    expect(acc.results()[0]!.count).toBe(1); // only origin 2 -> target 3
  });

  it("NodeLoadForecaster reports per-horizon accuracy in ms", () => {
    const f = new NodeLoadForecaster({ stepMs: 1000, horizonsMs: [1000, 5000] });
    seasonalSeries(300, 20).forEach((v, i) => f.observe(i * 1000, v));
    const acc = f.accuracy();
    expect(acc.map((a) => a.horizonMs)).toEqual([1000, 5000]);
    expect(acc[0]!.count).toBe(299);
    expect(acc[1]!.ratio).toBeLessThan(1);
  });
});

describe("NodeLoadForecaster", () => {
  it("resamples irregular samples onto the step grid", () => {
    const f = new NodeLoadForecaster({ stepMs: 1000 });
    f.observe(0, 1); // step 0 closes at once (exactly on the grid)
    f.observe(400, 2);
    f.observe(900, 4); // step 1: mean 3, closed by the next sample
    expect(f.completedSteps).toBe(1);
    f.observe(3100, 9); // step 4 opens; step 1 closes
    expect(f.completedSteps).toBe(2);
    f.observe(4000, 11); // step 4 = mean(9, 11) = 10; steps 2 and 3 interpolated (3 -> 10)
    expect(f.completedSteps).toBe(5);
    expect(f.lastStepTimeMs).toBe(4000);
    expect(f.forecast(0).mean).toBe(10);
    f.observe(3500, 1); // out of order: dropped
    expect(f.dropped).toBe(1);
  });

  it("folds a second sample at the exact end of a step that just closed into the next step", () => {
    const f = new NodeLoadForecaster({ stepMs: 1000 });
    f.observe(0, 1); // step 0 closes at once
    f.observe(1000, 2); // step 1 closes at once (exactly on its end)
    f.observe(1000, 6); // same timestamp: step 1 is closed, so it opens step 2
    expect(f.dropped).toBe(0);
    expect(f.completedSteps).toBe(2);
    f.observe(2000, 8); // step 2 = mean(6, 8) = 7
    expect(f.completedSteps).toBe(3);
    expect(f.lastStepTimeMs).toBe(2000);
    expect(f.forecast(0).mean).toBe(7);
    f.observe(1999, 0); // older than the newest sample: still dropped
    expect(f.dropped).toBe(1);
  });

  it("forecast() gives mean <= upper, and upper tracks residual spread", () => {
    const f = new NodeLoadForecaster({ stepMs: 1000 });
    seasonalSeries(600, 30, { noise: 0.3 }).forEach((v, i) => f.observe(i * 1000, v));
    const fc = f.forecast(6000);
    expect(Number.isFinite(fc.mean)).toBe(true);
    expect(fc.upper).toBeGreaterThan(fc.mean);
    expect(fc.upper - fc.mean).toBeLessThan(2);
    expect(f.recentPercentile(0.95)).toBeGreaterThan(10);
  });

  it("saturationEta finds the crossing time of a rising series", () => {
    const f = new NodeLoadForecaster({ stepMs: 1000, horizonsMs: [1000, 5000, 30000, 60000] });
    const r = rng(9);
    for (let i = 0; i <= 200; i++) f.observe(1_000_000 + i * 1000, 0.2 + 0.002 * i + 0.001 * gauss(r));
    // Now at 0.6, rising 0.002 per second: reaches 0.68 about 40 s later.
    expect(f.lastStepTimeMs).toBe(1_200_000);
    const eta = f.saturationEta(0.68, 120_000);
    expect(eta).not.toBeNull();
    expect(Math.abs(eta! - 1_240_000)).toBeLessThan(5_000);
    const etaUpper = f.saturationEta(0.68, 120_000, "upper");
    expect(etaUpper).not.toBeNull();
    expect(etaUpper!).toBeLessThanOrEqual(eta!);
    expect(f.saturationEta(0.68, 20_000)).toBeNull(); // not within 20 s
    expect(f.saturationEta(0.5, 20_000)).toBe(1_200_000); // already above
  });

  it("saturationEta is null for a flat series", () => {
    const f = new NodeLoadForecaster();
    for (let i = 0; i < 100; i++) f.observe(i * 1000, 0.4);
    expect(f.saturationEta(0.8, 600_000, "upper")).toBeNull();
  });
});

describe("option validation", () => {
  const field = (fn: () => unknown): string => {
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(ForecastOptionError);
      return (e as ForecastOptionError).field;
    }
    throw new Error("expected a ForecastOptionError");
  };

  it("names the bad field", () => {
    expect(field(() => new NodeLoadForecaster({ stepMs: -5 }))).toBe("stepMs");
    expect(field(() => new NodeLoadForecaster({ stepMs: 1000, horizonsMs: [1500] }))).toBe("horizonsMs[0]");
    expect(field(() => new NodeLoadForecaster({ headroomQuantile: 1.5 }))).toBe("headroomQuantile");
    expect(field(() => new NodeLoadForecaster({ model: { historySteps: 2 } }))).toBe("model.historySteps");
    expect(field(() => new NodeLoadForecaster({ model: { period: { minAcf: 3 } } }))).toBe("model.period.minAcf");
    expect(field(() => new NodeLoadForecaster({ model: { seasonality: "weekly" as never } }))).toBe("model.seasonality");
    expect(field(() => new NodeLoadForecaster({ stepz: 1 } as never))).toBe("options.stepz");
    expect(field(() => new StepForecaster({ refitEverySteps: 0 }))).toBe("model.refitEverySteps");
    expect(field(() => new DecayingHistogram({ halfLife: 0 }))).toBe("histogram.halfLife");
    expect(field(() => new ResidualAlerter({ halfLifeMs: 1000, cooldownMs: 0, quantile: 2 }))).toBe("alerts.quantile");
    expect(() => new NodeLoadForecaster({ stepMs: "1s" as never })).toThrow(/"stepMs".*finite number/);
  });
});

describe("residual alerts", () => {
  it("alerts on a sustained jump and stays quiet on noise", () => {
    const r = rng(21);
    const al = new ResidualAlerter({ halfLifeMs: 1e6, cooldownMs: 10_000 });
    const alerts: number[] = [];
    for (let i = 0; i < 600; i++) {
      const actual = (i >= 500 && i < 505 ? 5 : 0) + gauss(r) * 0.1;
      const ev = al.update(i * 1000, actual, 0);
      if (ev) alerts.push(ev.tMs);
    }
    expect(alerts).toEqual([501_000]);
  });

  it("scores alerts against windows", () => {
    const s = scoreAlerts([150, 500, 1500], [{ startMs: 100, endMs: 200 }, { startMs: 1000, endMs: 1100 }], 2);
    expect(s.truePositives).toBe(1);
    expect(s.falsePositives).toBe(2);
    expect(s.recall).toBe(0.5);
    expect(s.precision).toBeCloseTo(1 / 3, 12);
    expect(s.falsePositivesPerDay).toBe(1);
    expect(s.meanDelayMinutes).toBeCloseTo(50 / 60_000, 12);
  });
});

describe("trace CSV loader", () => {
  it("reads ISO date and numeric-seconds timestamps", () => {
    const a = parseTraceCsv("timestamp,value\n2014-02-14 14:30:00,0.132\n2014-02-14 14:35:00,1.5e-1\n", "a.csv");
    expect(a.tMs).toEqual([Date.UTC(2014, 1, 14, 14, 30), Date.UTC(2014, 1, 14, 14, 35)]);
    expect(a.values).toEqual([0.132, 0.15]);
    const b = parseTraceCsv("timestamp,value\n0,0.44\n300,0.43\n\n600,0.5\n", "b.csv");
    expect(b.tMs).toEqual([0, 300_000, 600_000]);
    expect(b.values).toEqual([0.44, 0.43, 0.5]);
    expect(parseTimestamp("2014-02-26 13:45:00.000000")).toBe(Date.UTC(2014, 1, 26, 13, 45));
    expect(parseTimestamp("2014-02-26T13:45:00Z")).toBe(Date.UTC(2014, 1, 26, 13, 45));
  });

  it("rejects a malformed row with its line number", () => {
    const bad = "timestamp,value\n2014-02-14 14:30:00,0.1\n2014-02-14 14:35:00,abc\n";
    expect(() => parseTraceCsv(bad, "bad.csv")).toThrow(/bad\.csv:3: value "abc" is not a number/);
    try {
      parseTraceCsv("timestamp,value\n0,1\nyesterday,2\n", "t.csv");
    } catch (e) {
      expect(e).toBeInstanceOf(TraceFormatError);
      expect((e as TraceFormatError).line).toBe(3);
    }
    expect(() => parseTraceCsv("timestamp,value\n0,1\n1,2,3\n", "c.csv")).toThrow(/c\.csv:3: expected 2 columns/);
    expect(() => parseTraceCsv("timestamp,value\n10,1\n5,2\n", "d.csv")).toThrow(/d\.csv:3: .*not after/);
  });
});
