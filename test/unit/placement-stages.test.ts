// Placement is staged as Nomad stages it: named feasibility checks that record, per node, why it
// was filtered; then ranking, where a full node is recorded as exhausted. Both strategies run the
// same checks and record the same verdicts, and a pending job's reason is read from them.
import { describe, expect, it } from "vitest";
import {
  CapacityPlacement,
  FEASIBILITY_CHECKS,
  ForecastPlacement,
  PlacementMetrics,
  explainFeasibility,
  feasibleNodes,
  type PlacementNode,
  type PlacementStrategy,
  type PlanningStrategy,
} from "../../scheduler/placement/index.js";
import { placementNode as node, wasmNeeds as needs } from "../helpers/placement.js";

/** One node failing each check in turn (and only that one), one full, one that fits. */
const eu = { zone: "eu" };
const cluster = (): PlacementNode[] => [
  node("draining", { ready: false, state: "NODE_STATE_DRAINING", labels: eu }),
  node("gpu-only", { kernelKinds: new Set(["KERNEL_KIND_GPU"]), labels: eu }),
  node("small", { logicalCores: 2, labels: eu }),
  node("lowmem", { memoryBytes: 2 ** 30, labels: eu }),
  node("elsewhere", { labels: { zone: "us" } }),
  node("full", { labels: eu, assigned: 12 }),
  node("fits", { labels: eu }),
];
const want = needs({ cores: 4, memoryBytes: 4 * 2 ** 30, nodeSelector: { zone: "eu" } });

const expectedFiltered = {
  draining: { check: "state", detail: "draining" },
  "gpu-only": { check: "kernel_kind", detail: "cannot run KERNEL_KIND_WASM kernels" },
  small: { check: "cores", detail: "has 2 cores, needs 4" },
  lowmem: { check: "memory", detail: `has ${2 ** 30} bytes of memory, needs ${4 * 2 ** 30}` },
  elsewhere: { check: "node_selector", detail: "label zone=us, needs eu" },
};

describe("feasibility stage", () => {
  it("names its checks in the order they run", () => {
    expect(FEASIBILITY_CHECKS.map((c) => c.name)).toEqual(["state", "kernel_kind", "gpu", "cores", "memory", "node_selector"]);
  });

  it("keeps the nodes that pass every check and records the first check each other node failed", () => {
    const metrics = new PlacementMetrics();
    const kept = feasibleNodes(want, cluster(), metrics);
    expect(kept.map((n) => n.id)).toEqual(["full", "fits"]);
    expect(Object.fromEntries(metrics.filtered)).toEqual(expectedFiltered);
    expect([...metrics.countsByCheck()]).toEqual([
      ["state", 1],
      ["kernel_kind", 1],
      ["cores", 1],
      ["memory", 1],
      ["node_selector", 1],
    ]);
  });

  it("says why a node is not ready when its view has the registry's state", () => {
    const metrics = new PlacementMetrics();
    feasibleNodes(needs(), [node("a", { ready: false, state: "NODE_STATE_DOWN" }), node("b", { ready: false })], metrics);
    expect(metrics.filtered.get("a")?.detail).toBe("down");
    expect(metrics.filtered.get("b")?.detail).toBe("not ready");
  });
});

const strategies: [string, () => PlanningStrategy<PlacementNode> & PlacementStrategy<PlacementNode>][] = [
  ["capacity", () => new CapacityPlacement<PlacementNode>()],
  ["forecast", () => new ForecastPlacement<PlacementNode>({ stepMs: 1000, seed: 1 })],
  ["forecast, sampled", () => new ForecastPlacement<PlacementNode>({ stepMs: 1000, seed: 1, exhaustiveBelow: 0, sampleBudget: 2 })],
];

describe.each(strategies)("ranking after feasibility: %s", (_name, make) => {
  it("places only on a feasible node with room, and records every node it dropped with the same verdicts", () => {
    const strategy = make();
    const nodes = cluster();
    for (const n of nodes) strategy.addNode(n, 4);
    const metrics = new PlacementMetrics();
    const placed = strategy.plan({ kernelId: "k", needs: want }, ["j/0"], metrics);
    expect(placed.map((n) => n.id)).toEqual(["fits"]);
    expect(Object.fromEntries(metrics.filtered)).toEqual(expectedFiltered);
    expect(Object.fromEntries(metrics.exhausted)).toEqual({ full: { check: "capacity", detail: "full (12/12 tasks)" } });
    expect(metrics.summary(want)).toBe(
      "1 is not ready; 1 cannot run wasm kernels; 1 has fewer than 4 cores; 1 has less than 4294967296 bytes of memory; 1 does not match node selector zone=eu; 1 is full",
    );
    // Placement decides; it does not count what it placed on the nodes.
    expect(nodes.map((n) => n.assigned)).toEqual([0, 0, 0, 0, 0, 12, 0]);
  });

  it("records a node the batch itself filled as exhausted, counting the batch's own choices", () => {
    const strategy = make();
    const only = node("only", { capacity: 2 });
    strategy.addNode(only, 2);
    const metrics = new PlacementMetrics();
    const placed = strategy.plan({ kernelId: "k", needs: needs() }, ["j/0", "j/1", "j/2"], metrics);
    expect(placed.map((n) => n.id)).toEqual(["only", "only"]);
    expect(only.assigned).toBe(0);
    // The capacity strategy plans the batch over free slots and does not revisit a node it
    // filled; the forecast strategy looks again for the third task and finds it full.
    if (strategy.name !== "capacity") expect(metrics.exhausted.get("only")?.detail).toBe("full (2/2 tasks)");
  });
});

describe("a pending job's reason comes from the same checks", () => {
  it("judges every live node as if ready, and reads the counts from the stage's metrics", () => {
    const nodes = cluster().filter((n) => n.id !== "fits" && n.id !== "full");
    // The draining node could take the job later: the job is not unschedulable.
    const withDraining = explainFeasibility(want, nodes);
    expect(withDraining.eligible).toBe(1);
    expect(withDraining.reason).toBe("");
    const rest = nodes.filter((n) => n.id !== "draining");
    const report = explainFeasibility(want, rest);
    expect(report.eligible).toBe(0);
    expect(report.reason).toBe(
      "0/4 nodes: 1 cannot run wasm kernels; 1 has fewer than 4 cores; 1 has less than 4294967296 bytes of memory; 1 does not match node selector zone=eu",
    );
    const metrics = new PlacementMetrics();
    feasibleNodes(want, rest, metrics);
    expect(report.filtered).toEqual(metrics.filtered);
  });
});
