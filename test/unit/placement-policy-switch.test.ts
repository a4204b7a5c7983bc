// The operator's placement switch (issue #14): `placement` = forecast | finish-time | capacity,
// from a config file, the environment or a flag alike, selects the policy the scheduler really
// runs (its metric names it, and the placements differ as each policy would), and the niced flag
// an agent registers with (HardwareProfile.niced) reaches the node's load model (yields).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig, schedulerConfigSchema, type SchedulerConfig } from "../../common/config.js";
import { createLogger } from "../../common/logger.js";
import type { HardwareProfile } from "../../common/types.js";
import { MemoryStateStore, MemoryTaskQueue } from "../../scheduler/backends/memory.js";
import { SchedulerCore } from "../../scheduler/core.js";
import { SchedulerMetrics } from "../../scheduler/metrics.js";
import { PlacementController } from "../../scheduler/placement/controller.js";
import { NodeRegistry } from "../../scheduler/registry.js";
import { wasmNeeds } from "../helpers/placement.js";

const POLICIES = ["forecast", "finish-time", "capacity"] as const;
const dir = mkdtempSync(path.join(os.tmpdir(), "distx-placement-switch-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The scheduler config with `placement` given by one source. */
function configFrom(source: "file" | "env" | "flag", policy: string): SchedulerConfig {
  if (source === "file") {
    const file = path.join(dir, `${policy}.json`);
    writeFileSync(file, JSON.stringify({ scheduler: { placement: policy } }));
    return loadConfig(schedulerConfigSchema, { section: "scheduler", file, env: {} });
  }
  if (source === "env") return loadConfig(schedulerConfigSchema, { section: "scheduler", env: { DISTX_PLACEMENT: policy } });
  return loadConfig(schedulerConfigSchema, { section: "scheduler", env: {}, flags: { placement: policy } });
}

const profile = (workers: number, niced?: boolean): HardwareProfile =>
  ({ hostname: "h", workers, cpu: { model: "x", logicalCores: workers }, memoryBytes: String(2 ** 33), gpus: [], kernelKinds: ["KERNEL_KIND_WASM"], labels: {}, ...(niced === undefined ? {} : { niced }) }) as unknown as HardwareProfile;

describe("the placement setting", () => {
  it("each value, from a file, the environment or a flag, is the policy the scheduler runs and reports", async () => {
    for (const policy of POLICIES) {
      for (const source of ["file", "env", "flag"] as const) {
        const config = configFrom(source, policy);
        expect(config.placement).toBe(policy);
        const registry = new NodeRegistry({ agentTimeoutMs: 60_000, prefetchPerWorker: 2 });
        const core = new SchedulerCore(config, registry, new MemoryStateStore(), new MemoryTaskQueue(), createLogger("test", "silent"));
        expect(core.placement.strategy.name, `${policy} from ${source}`).toBe(policy);
        const text = await new SchedulerMetrics(core, registry).registry.metrics();
        expect(text).toContain(`distx_placement_policy{policy="${policy}"} 1`);
        expect(text.match(/^distx_placement_policy\{/gm)).toHaveLength(1);
      }
    }
    expect(() => configFrom("env", "finish_time")).toThrow(/placement/);
  });

  // The same two niced nodes, the same heartbeats and run times; only the setting differs. Node
  // "a" is idle now but its host's 12 s batch (90 %) starts in 4 s; node "b" holds a steady 30 %.
  // Only the forecast sees the batch coming; finish-time scores the last sample (a looks idle and
  // is faster); capacity looks at neither load, only free capacity × speed.
  const STEP = 1000;
  const batch = (tMs: number) => ((tMs / STEP) % 30 < 12 ? 0.9 : 0.05);
  function placeWith(policy: (typeof POLICIES)[number]): string[] {
    const config = configFrom("env", policy);
    const registry = new NodeRegistry({ agentTimeoutMs: 60_000, prefetchPerWorker: 2 });
    const clock = { now: 0 };
    const controller = new PlacementController(
      { ...config, heartbeatIntervalMs: STEP, rebalance: false },
      registry,
      { saturation: () => {}, saturationWithdrawn: () => {}, queuedOn: () => [], takeBack: () => {} },
      () => clock.now,
    );
    const a = registry.register(profile(4, true), "a");
    const b = registry.register({ ...profile(4, true), calibration: { kernel: "c", opsPerSecond: 2e9, wallMs: 1 } } as unknown as HardwareProfile, "b");
    registry.attachSession(a.id, () => {});
    registry.attachSession(b.id, () => {});
    const beat = (id: string, u: number) =>
      registry.heartbeat(id, { cpuUtilization: u, agentCpuUtilization: 0, memoryUsedBytes: "0", runningTasks: 0, queuedTasks: 0, gpuUtilization: -1, sampledAtMs: clock.now }, false);
    for (let k = 0; k < 237; k++) {
      clock.now = k * STEP;
      beat("a", batch(clock.now));
      beat("b", 0.3);
    }
    // Teach both the kernel's run time: 8 s on "a", 9 s on "b" (b is faster by calibration, but
    // the history says otherwise; the forecast strategies go by the history).
    controller.observeRun("w0", "k", "a", 8 * STEP);
    controller.observeRun("w1", "k", "a", 8 * STEP);
    controller.observeRun("w2", "k", "b", 9 * STEP);
    controller.observeRun("w3", "k", "b", 9 * STEP);
    expect(controller.yieldsToHost("a")).toBe(policy === "capacity" ? undefined : 1);
    return controller.plan({ kernelId: "k", needs: wasmNeeds() }, ["t1"]).map((n) => n.id);
  }

  it("selects the behaviour too: forecast avoids the batch about to start, finish-time goes by the last sample, capacity by speed", () => {
    expect(placeWith("forecast")).toEqual(["b"]);
    expect(placeWith("finish-time")).toEqual(["a"]);
    expect(placeWith("capacity")).toEqual(["b"]); // twice the calibrated speed, both empty
  });
});

describe("a niced agent's registration", () => {
  it("the node's load model yields (niced sharing) when the agent registered niced; not when it did not say (older agents) or said no", () => {
    const config = configFrom("flag", "forecast");
    const registry = new NodeRegistry({ agentTimeoutMs: 60_000, prefetchPerWorker: 2 });
    const controller = new PlacementController(config, registry, { saturation: () => {}, saturationWithdrawn: () => {}, queuedOn: () => [], takeBack: () => {} });
    for (const [id, niced] of [["niced", true], ["older", undefined], ["normal", false]] as const) {
      const n = registry.register(profile(2, niced), id);
      registry.attachSession(n.id, () => {});
      expect(n.yields).toBe(niced === true);
      expect(registry.toProto(n).profile?.niced ?? false).toBe(niced === true); // what the Redis node cache stores
    }
    expect(controller.yieldsToHost("niced")).toBe(1);
    expect(controller.yieldsToHost("older")).toBe(0);
    expect(controller.yieldsToHost("normal")).toBe(0);
    // The model applies it: 2 of ours beside 1.5 busy cores of the host's load on 2 cores.
    const heartbeat = { cpuUtilization: 0.75, agentCpuUtilization: 0, memoryUsedBytes: "0", runningTasks: 0, queuedTasks: 0, gpuUtilization: -1, sampledAtMs: 0 };
    registry.heartbeat("niced", heartbeat, false);
    registry.heartbeat("normal", heartbeat, false);
    expect(controller.strategy.loadModel!("niced")!.currentSlowdown(2)).toBeCloseTo(4); // 0.5 core left for 2 threads
    expect(controller.strategy.loadModel!("normal")!.currentSlowdown(2)).toBeCloseTo(1.75); // (2 + 1.5) / 2
    // Registered again (the agent restarted) without being niced: the model follows.
    const again = registry.register(profile(2, false), "niced");
    registry.attachSession(again.id, () => {});
    expect(controller.yieldsToHost("niced")).toBe(0);
  });
});
