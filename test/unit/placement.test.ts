import { describe, expect, it } from "vitest";
import { chooseNode, filterNodes, placeBatch, score, unmetConstraint } from "../../scheduler/placement/index.js";
import { placementNode, wasmNeeds } from "../helpers/placement.js";

const node = placementNode;
const needs = wasmNeeds;

describe("placement filter", () => {
  it("keeps nodes that meet every hard constraint and says why the others fail", () => {
    const nodes = [
      node("small", { logicalCores: 2 }),
      node("big", { logicalCores: 64, gpuCount: 1, labels: { zone: "eu" } }),
      node("down", { ready: false }),
      node("lowmem", { memoryBytes: 2 ** 30 }),
    ];
    const n = needs({ cores: 4, memoryBytes: 4 * 2 ** 30, gpu: true, nodeSelector: { zone: "eu" } });
    expect(filterNodes(n, nodes).map((x) => x.id)).toEqual(["big"]);
    expect(unmetConstraint(n, nodes[0]!)).toBe("has no GPU");
    expect(unmetConstraint(needs({ cores: 4 }), nodes[0]!)).toBe("has 2 cores, needs 4");
    expect(unmetConstraint(n, nodes[2]!)).toBe("not ready");
    expect(unmetConstraint(needs({ memoryBytes: 4 * 2 ** 30 }), nodes[3]!)).toMatch(/needs 4294967296/);
    expect(unmetConstraint(needs({ nodeSelector: { zone: "us" } }), nodes[1]!)).toBe("label zone=eu, needs us");
    expect(unmetConstraint(needs({ kind: "KERNEL_KIND_GPU" }), nodes[1]!)).toBe("cannot run KERNEL_KIND_GPU kernels");
  });
});

describe("placement score", () => {
  it("scores free capacity times calibrated speed", () => {
    expect(score(node("a", { capacity: 10, assigned: 4, speed: 2 }))).toBe(12);
    expect(score(node("b", { capacity: 10, assigned: 10, speed: 5 }))).toBe(0);
  });

  it("picks the best node with room, and none when all are full", () => {
    const fast = node("fast", { speed: 3, capacity: 4 });
    const slow = node("slow", { speed: 1, capacity: 4 });
    expect(chooseNode([slow, fast])?.id).toBe("fast");
    expect(chooseNode([node("x", { assigned: 12 })])).toBeUndefined();
  });

  it("prefers a node three times as fast until its free capacity falls to a third of the slower one's", () => {
    const fast = node("fast", { speed: 3, capacity: 10 });
    const slow = node("slow", { speed: 1, capacity: 10 });
    const placed = placeBatch([fast, slow], 8).map((n) => n.id);
    // fast scores 3·(10-k): it wins while 3·(10-k) > 10, i.e. for its first 7 tasks.
    expect(placed).toEqual(["fast", "fast", "fast", "fast", "fast", "fast", "fast", "slow"]);
    // Filled to capacity, both hold all they can: 10 each.
    expect(placeBatch([fast, slow], 100)).toHaveLength(12);
  });

  it("stops placing when capacity runs out", () => {
    const a = node("a", { capacity: 3 });
    const b = node("b", { capacity: 2 });
    expect(placeBatch([a, b], 10)).toHaveLength(5);
    expect(a.assigned + b.assigned).toBe(5);
  });
});
