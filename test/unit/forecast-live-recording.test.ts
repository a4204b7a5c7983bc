// The live forecast check's parts that need no processes: the scheduler's heartbeat recording
// (scheduler/placement/load-recorder.ts) and its replay scored like distx_forecast_error_ratio
// (bench/forecast/live-replay.ts). The live run itself is a bench: bench/forecast/live.ts.
import { mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { HardwareProfile } from "../../common/types.js";
import { NodeRegistry } from "../../scheduler/registry.js";
import { recordLoad, type RecordedLoad } from "../../scheduler/placement/load-recorder.js";
import { NodeLoadForecaster, pooledErrorRatio } from "../../scheduler/forecast/index.js";
import { readRecording, replayScore } from "../../bench/forecast/live-replay.js";
import { loadPlan, type LoadPhase } from "../../bench/forecast/live-load.js";

const profile = { hostname: "h", workers: 1, cpu: { model: "x", logicalCores: 1 }, memoryBytes: String(2 ** 33), gpus: [], kernelKinds: ["KERNEL_KIND_WASM"], labels: {} } as unknown as HardwareProfile;

describe("heartbeat recording for the live forecast check", () => {
  it("writes one line per heartbeat load with the scheduler's clock, and none without DISTX_LOAD_RECORD_FILE's recorder", async () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), "distx-rec-")), "load.ndjson");
    const registry = new NodeRegistry({ agentTimeoutMs: 60_000, prefetchPerWorker: 2 });
    let clock = 5000;
    recordLoad(registry, file, () => clock);
    const node = registry.register(profile, "n", "0.1.0", 1);
    const load = { cpuUtilization: 0.25, agentCpuUtilization: 0.2, runningTasks: 1, queuedTasks: 3 } as never;
    registry.heartbeat(node.id, load, false);
    clock = 6000;
    registry.heartbeat(node.id, { ...(load as object), cpuUtilization: 0.75 } as never, false);
    registry.heartbeat(node.id, null, false); // no load: nothing recorded
    await new Promise((r) => setTimeout(r, 50));
    const recs = readRecording(file);
    expect(recs).toEqual([
      { t: 5000, node: node.id, cpu: 0.25, agentCpu: 0.2, running: 1, queued: 3 },
      { t: 6000, node: node.id, cpu: 0.75, agentCpu: 0.2, running: 1, queued: 3 },
    ]);
    expect(readFileSync(file, "utf8").split("\n").filter(Boolean)).toHaveLength(2);
    registry.stop();
  });

  it("replays a recording to the same pooled ratio the scheduler's forecaster reports, and splits it by time", () => {
    const recs: RecordedLoad[] = [];
    const direct = new NodeLoadForecaster({ stepMs: 1000 });
    for (let i = 0; i < 400; i++) {
      // Bursts with idle gaps and noise, as the bench's load makes.
      const cpu = (Math.floor(i / 25) % 2 === 0 ? 0.8 : 0.1) + 0.05 * Math.sin(i * 1.7);
      recs.push({ t: 1000 * i, node: "a", cpu, agentCpu: -1, running: 0, queued: 0 });
      direct.observe(1000 * i, cpu);
    }
    const score = replayScore(recs, 1000, {}, 280_000);
    expect(score.all).toBeCloseTo(pooledErrorRatio(direct.accuracy()), 12);
    expect(score.train).toBeGreaterThan(0);
    expect(score.validation).toBeGreaterThan(0);
    // Replaying only up to the split scores the training part exactly: it never reads later samples.
    expect(replayScore(recs, 1000, {}, 280_000, 280_000).all).toBeCloseTo(score.train, 12);
  });
});

describe("the live bench's load plan (bench/forecast/live-load.ts)", () => {
  it("alternates bursts of 6–30 s at one or two jobs with idle gaps of 4–30 s", () => {
    for (const seed of [1, 2, 3]) {
      const plan = loadPlan(seed);
      const phases = Array.from({ length: 40 }, () => plan.next().value as LoadPhase);
      for (const p of phases) {
        expect(p.burstS).toBeGreaterThanOrEqual(6);
        expect(p.burstS).toBeLessThanOrEqual(30);
        expect(p.gapS).toBeGreaterThanOrEqual(4);
        expect(p.gapS).toBeLessThanOrEqual(30);
      }
      // Both levels of load occur: a raw 32-bit draw used as a fraction made every burst 2 jobs and endless.
      expect(new Set(phases.map((p) => p.inFlight))).toEqual(new Set([1, 2]));
    }
  });
});
