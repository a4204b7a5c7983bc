import { describe, expect, it } from "vitest";
import { placementNode, wasmNeeds } from "../helpers/placement.js";
import type { PlacementNode } from "../../scheduler/placement/index.js";
import { slowdownFactor, backgroundOf } from "../../scheduler/placement/load-model.js";
import { NodeIndex, classKey } from "../../scheduler/placement/node-index.js";
import { RuntimeModel, DEFAULT_WORK } from "../../scheduler/placement/runtime-model.js";
import { CapacityPlacement, ForecastPlacement, finishEstimate } from "../../scheduler/placement/strategy.js";
import { PlacementController, type PredictedSaturation, type SaturationWithdrawn } from "../../scheduler/placement/controller.js";
import { NodeRegistry, type NodeEntry } from "../../scheduler/registry.js";
import type { HardwareProfile } from "../../common/types.js";

// These scenarios use 4-core, 8 GiB nodes.
const node = (id: string, over: Partial<PlacementNode> = {}): PlacementNode =>
  placementNode(id, { logicalCores: 4, memoryBytes: 8 * 2 ** 30, ...over });
const needs = wasmNeeds;
const keys = (job: string, n: number) => Array.from({ length: n }, (_, i) => `${job}/${i}`);
const sample = (atMs: number, cpu: number, own = 0, running = 0) => ({ atMs, cpuUtilization: cpu, agentCpuUtilization: own, runningTasks: running, queuedTasks: 0 });

describe("finish-time arithmetic", () => {
  it("waits only when every worker is busy, and stretches by the slowdown", () => {
    expect(finishEstimate(100, 0, 0, 4, 1)).toBe(100);
    expect(finishEstimate(100, 800, 3, 4, 1)).toBe(100);
    expect(finishEstimate(100, 800, 4, 4, 1)).toBe(300);
    expect(finishEstimate(100, 800, 4, 4, 2)).toBe(600);
  });
  it("models fair sharing of cores with background load", () => {
    expect(slowdownFactor(1, 1, 1)).toBe(2); // one burner, one worker, one core
    expect(slowdownFactor(8, 1, 0.5)).toBe(1); // free cores left
    expect(slowdownFactor(8, 8, 0.5)).toBe(1.5);
    expect(backgroundOf(sample(0, 0.9, 0.4, 1), 1)).toBeCloseTo(0.5);
    expect(backgroundOf(sample(0, 0.7, 0, 0), 2)).toBeCloseTo(0.7);
    expect(backgroundOf(sample(0, 1, 0, 1), 2)).toBeCloseTo(0.5); // old agent: one core per running task
  });
});

describe("node index", () => {
  it("groups equal hardware, filters whole classes, and checks memory per node only when a class straddles it", () => {
    const idx = new NodeIndex<PlacementNode>();
    idx.add(node("a"));
    idx.add(node("b", { memoryBytes: 4 * 2 ** 30 }));
    idx.add(node("g", { gpuCount: 1, labels: { zone: "eu" } }));
    idx.add(node("fast", { speed: 4 }));
    expect(idx.classOf("a")).toBe(idx.classOf("b"));
    expect(classKey(node("x", { speed: 1.02 }))).toBe(classKey(node("y", { speed: 1 })));
    expect(idx.eligible(needs({ gpu: true })).map((e) => e.cls.nodes.map((n) => n.id))).toEqual([["g"]]);
    expect(idx.eligible(needs({ nodeSelector: { zone: "us" } }))).toEqual([]);
    const mem = idx.eligible(needs({ memoryBytes: 6 * 2 ** 30 })).find((e) => e.cls === idx.classOf("a"))!;
    expect(mem.allFit).toBe(false);
    idx.remove("a");
    expect(idx.classOf("b")!.nodes.map((n) => n.id)).toEqual(["b"]);
    expect(idx.size).toBe(3);
  });
});

describe("runtime model", () => {
  it("prefers node history, then class history, then calibrated work scaled by speed", () => {
    const m = new RuntimeModel();
    const a = { id: "a", cls: "c1", speed: 1 };
    const b = { id: "b", cls: "c1", speed: 1 };
    const f = { id: "f", cls: "c2", speed: 4 };
    expect(m.estimate("k", f)).toBe(DEFAULT_WORK / 4);
    m.observe("k", a, 200);
    expect(m.estimate("k", b)).toBe(200); // same class
    expect(m.estimate("k", f)).toBe(50); // 200 work units / speed 4
    m.observe("k", a, 400, 2); // ran under a 2× slowdown: 200 unloaded
    expect(m.estimate("k", a)).toBeCloseTo(200);
  });
});

describe("forecast placement", () => {
  it("gives a twice-as-fast node about twice the tasks, and none to a full node", () => {
    const fast = node("fast", { speed: 2, capacity: 100 });
    const slow = node("slow", { speed: 1, capacity: 100 });
    const p = new ForecastPlacement<PlacementNode>({ stepMs: 1000, seed: 1 });
    p.addNode(fast, 4);
    p.addNode(slow, 4);
    const placed = p.placeBatch({ kernelId: "k", needs: needs() }, keys("j", 60));
    const nFast = placed.filter((n) => n.id === "fast").length;
    expect(placed).toHaveLength(60);
    expect(nFast / (60 - nFast)).toBeGreaterThan(1.6);
    expect(nFast / (60 - nFast)).toBeLessThan(2.5);
  });

  it("avoids a node whose cores are busy with background load", () => {
    const a = node("a", { logicalCores: 1 });
    const b = node("b", { logicalCores: 1 });
    const p = new ForecastPlacement<PlacementNode>({ stepMs: 1000, seed: 1, waitForBetter: false });
    p.addNode(a, 1);
    p.addNode(b, 1);
    for (let t = 0; t < 30; t++) {
      p.observeLoad("a", sample(t * 1000, 1.0));
      p.observeLoad("b", sample(t * 1000, 0.05));
    }
    const placed = p.placeBatch({ kernelId: "k", needs: needs() }, keys("j", 6));
    expect(placed.filter((n) => n.id === "b").length).toBeGreaterThanOrEqual(4);
    expect(placed[0]!.id).toBe("b");
  });

  it("keeps a task queued rather than give it to a much slower node (late binding)", () => {
    const fast = node("fast", { speed: 8, capacity: 1 });
    const slow = node("slow", { speed: 1, capacity: 4 });
    const p = new ForecastPlacement<PlacementNode>({ stepMs: 1000 });
    p.addNode(fast, 1);
    p.addNode(slow, 1);
    const placed = p.placeBatch({ kernelId: "k", needs: needs() }, keys("j", 3));
    expect(placed.map((n) => n.id)).toEqual(["fast"]);
    p.released("j/0");
    fast.assigned--;
    expect(p.placeBatch({ kernelId: "k", needs: needs() }, ["j/1"]).map((n) => n.id)).toEqual(["fast"]);
  });

  it("samples a bounded number of candidates per placement at 10,000 nodes and still finds fast nodes", () => {
    const p = new ForecastPlacement<PlacementNode>({ stepMs: 1000, seed: 3 });
    const nodes: PlacementNode[] = [];
    for (let i = 0; i < 10_000; i++) {
      const n = node(`n${i}`, { speed: i % 10 === 0 ? 4 : 1, capacity: 8 });
      nodes.push(n);
      p.addNode(n, 4);
    }
    const placed = p.placeBatch({ kernelId: "k", needs: needs() }, keys("j", 200));
    expect(placed).toHaveLength(200);
    expect(p.stats.evaluated / 200).toBeLessThanOrEqual(34);
    // 10 % of nodes are fast; sampling per class makes sure they are considered every time.
    expect(placed.filter((n) => n.speed === 4).length / 200).toBeGreaterThan(0.9);
  });

  it("learns that one node runs behind its forecast and asks to move its queued tasks", () => {
    const a = node("a", { capacity: 12 });
    const b = node("b", { capacity: 12 });
    const p = new ForecastPlacement<PlacementNode>({ stepMs: 1000, seed: 1, waitForBetter: false });
    p.addNode(a, 2);
    p.addNode(b, 2);
    const placed = p.placeBatch({ kernelId: "k", needs: needs() }, keys("j", 12));
    expect(new Set(placed.map((n) => n.id))).toEqual(new Set(["a", "b"]));
    // Node a turns out 10× slower than predicted (e.g. throttled); b finishes its work.
    for (let i = 0; i < 12; i++) {
      const key = `j/${i}`;
      const n = placed[i]!;
      if (n.id === "a" && i < 4) p.observeRun(key, "k", "a", 10 * DEFAULT_WORK);
      if (n.id === "b") {
        p.observeRun(key, "k", "b", DEFAULT_WORK);
        p.released(key);
        b.assigned--;
      }
    }
    expect(p.lagOf("a")).toBeGreaterThan(2);
    expect(p.rebalanceCount(a, { kernelId: "k", needs: needs() }, 10)).toBeGreaterThan(0);
    expect(p.rebalanceCount(b, { kernelId: "k", needs: needs() }, 10)).toBe(0);
  });

  it("the capacity policy is still available and scores free capacity × speed", () => {
    const p = new CapacityPlacement<PlacementNode>();
    p.addNode(node("s", { speed: 1, capacity: 4 }));
    p.addNode(node("f", { speed: 3, capacity: 4 }));
    expect(p.placeBatch({ kernelId: "k", needs: needs() }, ["x/0"]).map((n) => n.id)).toEqual(["f"]);
  });
});

describe("predicted saturation", () => {
  const profile = (workers: number): HardwareProfile =>
    ({ hostname: "h", workers, cpu: { model: "x", logicalCores: workers }, memoryBytes: String(2 ** 33), gpus: [], kernelKinds: ["KERNEL_KIND_WASM"], labels: {} }) as unknown as HardwareProfile;

  it("fires once, before a rising load crosses the threshold, and re-arms after it falls", () => {
    const registry = new NodeRegistry({ agentTimeoutMs: 60_000, prefetchPerWorker: 2 });
    let now = 0;
    const events: PredictedSaturation[] = [];
    new PlacementController(
      { placement: "forecast", heartbeatIntervalMs: 1000, saturationThreshold: 0.9, saturationHorizonMs: 10_000, saturationBound: "upper", saturationCooldownMs: 0, rebalance: false },
      registry,
      { saturation: (e) => events.push(e), saturationWithdrawn: () => {}, queuedOn: () => [], takeBack: () => {} },
      () => now,
    );
    const n = registry.register(profile(2));
    registry.attachSession(n.id, () => {});
    const beat = (u: number) => {
      registry.heartbeat(n.id, { cpuUtilization: u, agentCpuUtilization: 0, memoryUsedBytes: "0", runningTasks: 0, queuedTasks: 0, gpuUtilization: -1, sampledAtMs: now }, false);
      now += 1000;
    };
    for (let i = 0; i < 40; i++) beat(0.2 + 0.01 * Math.sin(i));
    expect(events).toHaveLength(0);
    let crossedAt = -1;
    for (let i = 0; i < 40; i++) {
      const u = Math.min(1, 0.2 + 0.025 * i);
      if (crossedAt < 0 && u >= 0.9) crossedAt = now;
      beat(u);
    }
    const nodeEvents = events.filter((e) => e.scope === "node");
    expect(nodeEvents).toHaveLength(1);
    expect(nodeEvents[0]!.atMs).toBeLessThan(crossedAt);
    expect(nodeEvents[0]!.nodeId).toBe(n.id);
    expect(nodeEvents[0]!.etaMs).toBeGreaterThan(0);
    for (let i = 0; i < 30; i++) beat(0.2);
    for (let i = 0; i < 40; i++) beat(Math.min(1, 0.2 + 0.025 * i));
    expect(events.filter((e) => e.scope === "node")).toHaveLength(2);
    expect(events.some((e) => e.scope === "cluster")).toBe(true);
  });
});

describe("predicted saturation: withdrawn and raised again", () => {
  const profile = (workers: number): HardwareProfile =>
    ({ hostname: "h", workers, cpu: { model: "x", logicalCores: workers }, memoryBytes: String(2 ** 33), gpus: [], kernelKinds: ["KERNEL_KIND_WASM"], labels: {} }) as unknown as HardwareProfile;

  function rig(cooldownMs: number, horizonMs = 10_000) {
    const registry = new NodeRegistry({ agentTimeoutMs: 60_000, prefetchPerWorker: 2 });
    const clock = { now: 0 };
    const raised: PredictedSaturation[] = [];
    const withdrawn: SaturationWithdrawn[] = [];
    const controller = new PlacementController(
      { placement: "forecast", heartbeatIntervalMs: 1000, saturationThreshold: 0.9, saturationHorizonMs: horizonMs, saturationBound: "upper", saturationCooldownMs: cooldownMs, rebalance: false },
      registry,
      { saturation: (e) => raised.push(e), saturationWithdrawn: (e) => withdrawn.push(e), queuedOn: () => [], takeBack: () => {} },
      () => clock.now,
    );
    const n = registry.register(profile(2));
    registry.attachSession(n.id, () => {});
    const beat = (u: number) => {
      registry.heartbeat(n.id, { cpuUtilization: u, agentCpuUtilization: 0, memoryUsedBytes: "0", runningTasks: 0, queuedTasks: 0, gpuUtilization: -1, sampledAtMs: clock.now }, false);
      clock.now += 1000;
    };
    return { controller, clock, raised, withdrawn, beat, nodeId: n.id };
  }
  const nodeOnly = <T extends { scope: string }>(list: T[]) => list.filter((e) => e.scope === "node");

  it("withdraws a node's prediction within one step of its forecast dropping below the threshold, and raises a later one again", () => {
    const r = rig(0);
    for (let i = 0; i < 40; i++) r.beat(0.2 + 0.01 * Math.sin(i));
    // Ramp until the node's prediction is raised, but stop before it saturates.
    for (let u = 0.2; nodeOnly(r.raised).length === 0; u += 0.05) {
      expect(u).toBeLessThan(0.9);
      r.beat(u);
    }
    const first = nodeOnly(r.raised)[0]!;
    expect(first.crossingAtMs).toBe(first.atMs + first.etaMs);
    expect(r.controller.predictedCrossing(r.nodeId)).toBe(first.crossingAtMs);
    // The load falls away: the forecast drops below the threshold; the prediction goes with it.
    let steps = 0;
    let droppedAt = -1;
    while (nodeOnly(r.withdrawn).length === 0 && steps < 30) {
      r.beat(0.05);
      steps++;
      const util = r.controller.strategy.loadModel?.(r.nodeId)?.util;
      if (droppedAt < 0 && util?.saturationEta(0.9, 10_000, "upper") === null) droppedAt = steps;
    }
    expect(nodeOnly(r.withdrawn)).toHaveLength(1);
    expect(droppedAt).toBeGreaterThan(0);
    expect(steps - droppedAt).toBeLessThanOrEqual(1);
    expect(nodeOnly(r.withdrawn)[0]).toMatchObject({ scope: "node", nodeId: r.nodeId });
    expect(r.controller.predictedCrossing(r.nodeId)).toBeUndefined();
    // A later ramp is a new prediction, raised again (not silently folded into the first).
    for (let i = 0; i < 20; i++) r.beat(0.2);
    for (let i = 0; i < 40; i++) r.beat(Math.min(1, 0.2 + 0.025 * i));
    expect(nodeOnly(r.raised)).toHaveLength(2);
    // The cluster's prediction has its own scope and is withdrawn too.
    for (let i = 0; i < 30; i++) r.beat(0.05);
    expect(r.withdrawn.some((e) => e.scope === "cluster" && e.nodeId === undefined)).toBe(true);
    expect(r.raised.filter((e) => e.scope === "cluster").every((e) => e.nodeId === undefined)).toBe(true);
  });

  it("a prediction held back by the cooldown is raised once the cooldown has passed, never silently", () => {
    const r = rig(30_000);
    for (let i = 0; i < 40; i++) r.beat(0.2 + 0.01 * Math.sin(i));
    for (let i = 0; i < 10; i++) r.beat(0.2 + 0.07 * i);
    expect(nodeOnly(r.raised)).toHaveLength(1);
    for (let i = 0; i < 6; i++) r.beat(0.05);
    expect(nodeOnly(r.withdrawn)).toHaveLength(1);
    // A second ramp inside the cooldown: held back while it lasts, then raised.
    for (let i = 0; i < 60 && nodeOnly(r.raised).length < 2; i++) r.beat(0.5 + 0.003 * i);
    expect(nodeOnly(r.raised)).toHaveLength(2);
    const [a, b] = nodeOnly(r.raised);
    expect(b!.atMs - a!.atMs).toBeGreaterThanOrEqual(30_000);
    // Every raise has its withdrawal or is still standing: the hooks never disagree.
    expect(nodeOnly(r.withdrawn).length).toBe(nodeOnly(r.raised).length - (r.controller.predictedCrossing(r.nodeId) === undefined ? 0 : 1));
  });

  it("reports forecast utilisation clamped to [0, 1] in the event", () => {
    // A steep ramp with a short horizon: the raw upper forecast is 1.3 when the event is raised.
    const r = rig(0, 3000);
    for (let i = 0; i < 40; i++) r.beat(0.2 + 0.01 * Math.sin(i));
    for (let i = 0; i < 7; i++) r.beat(0.2 + 0.1 * i);
    expect(r.raised.length).toBeGreaterThan(0);
    for (const e of r.raised) {
      expect(e.forecast).toBeGreaterThanOrEqual(0);
      expect(e.forecast).toBeLessThanOrEqual(1);
    }
  });
});

describe("pipeline window (tiny tasks)", () => {
  const profile = (workers: number): HardwareProfile =>
    ({ hostname: "h", workers, cpu: { model: "x", logicalCores: workers }, memoryBytes: String(2 ** 33), gpus: [], kernelKinds: ["KERNEL_KIND_WASM"], labels: {} }) as unknown as HardwareProfile;

  function completeTasks(registry: NodeRegistry, node: NodeEntry, count: number): void {
    for (let i = 0; i < count; i++) {
      const key = `job-x/${node.completed}`;
      registry.addTask(node, key);
      registry.removeTask(node.id, key, true);
    }
  }

  it("widens a node that completes tasks fast to rate × window, keeps a slow one at its base, and narrows again when work slows", () => {
    const registry = new NodeRegistry({ agentTimeoutMs: 60_000, prefetchPerWorker: 2, pipelineWindowMs: 100 });
    const fast = registry.register(profile(2));
    const slow = registry.register(profile(2));
    for (const n of [fast, slow]) registry.attachSession(n.id, () => {});
    const widened: string[] = [];
    registry.on("capacity", (n: NodeEntry, key?: string) => key === undefined && widened.push(n.id));
    expect(fast.capacity).toBe(6);
    // The test's own clock: a whole number (now += 100 stays exact) ahead of the registry's start
    // tick, so the first tick below is a clean reset (a fractional or earlier clock made 900 read 901).
    let now = Math.ceil(performance.now()) + 1000;
    registry.updateWindows(now);
    // 500 completions in 100 ms = 5,000/s: 100 ms of it is 500 tasks.
    completeTasks(registry, fast, 500);
    completeTasks(registry, slow, 2);
    registry.updateWindows((now += 100));
    expect(fast.capacity).toBe(500);
    expect(slow.capacity).toBe(6);
    expect(widened).toEqual([fast.id]);
    // Idle ticks: the rate decays and the capacity comes back down to the base, never below.
    for (let i = 0; i < 30; i++) registry.updateWindows((now += 100));
    expect(fast.capacity).toBe(6);
  });

  it("widens a node's window while it is the limit (full, tasks waiting, completions rising), up to 4×, and narrows it when it is not", () => {
    const registry = new NodeRegistry({ agentTimeoutMs: 60_000, prefetchPerWorker: 2, pipelineWindowMs: 100 });
    const n = registry.register(profile(2));
    registry.attachSession(n.id, () => {});
    // The test's own clock: a whole number (now += 100 stays exact) ahead of the registry's start
    // tick, so the first tick below is a clean reset (a fractional or earlier clock made 900 read 901).
    let now = Math.ceil(performance.now()) + 1000;
    registry.updateWindows(now);
    const tick = (completions: number, full: boolean) => {
      completeTasks(registry, n, completions);
      if (full) registry.noteFull(n);
      registry.updateWindows((now += 100));
    };
    tick(500, false);
    expect(n.capacity).toBe(500); // 5,000/s × 100 ms: not full, so the window stays
    tick(600, true);
    expect(n.windowMs).toBe(150); // full and completions rose: ×1.5
    expect(n.capacity).toBe(900);
    tick(600, true);
    expect(n.windowMs).toBe(150); // full, but the widening did not pay off: held
    for (const c of [700, 800, 900, 1000, 1100]) tick(c, true);
    expect(n.windowMs).toBe(400); // at most 4 × pipelineWindowMs
    expect(n.capacity).toBe(4400);
    for (let i = 0; i < 40; i++) tick(1100, false);
    expect(n.windowMs).toBe(100); // not the limit: back to the configured window
    expect(n.capacity).toBe(1100);
  });

  it("stays at workers × (1 + prefetch) when the window is off", () => {
    const registry = new NodeRegistry({ agentTimeoutMs: 60_000, prefetchPerWorker: 2 });
    const n = registry.register(profile(4));
    registry.attachSession(n.id, () => {});
    // The test's own clock: a whole number (now += 100 stays exact) ahead of the registry's start
    // tick, so the first tick below is a clean reset (a fractional or earlier clock made 900 read 901).
    let now = Math.ceil(performance.now()) + 1000;
    registry.updateWindows(now);
    completeTasks(registry, n, 1000);
    registry.updateWindows((now += 100));
    expect(n.capacity).toBe(12);
  });
});
