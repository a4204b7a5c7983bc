// Placement decides without writing nodes: planBatch must make exactly the choices that
// chooseNode makes when each choice is counted on the node (the old, writing placeBatch), and
// leave the candidates untouched.
import { describe, expect, it } from "vitest";
import { chooseNode, planBatch } from "../../scheduler/placement/constraints.js";
import { Rng } from "../../scheduler/placement/strategy.js";
import { placementNode } from "../helpers/placement.js";

function countedOnNodes(candidates: ReturnType<typeof placementNode>[], count: number): string[] {
  const copies = candidates.map((n) => ({ ...n }));
  const out: string[] = [];
  for (let k = 0; k < count; k++) {
    const n = chooseNode(copies);
    if (!n) break;
    n.assigned++;
    out.push(n.id);
  }
  return out;
}

describe("planBatch", () => {
  it("chooses as chooseNode would with each choice counted, without changing any node", () => {
    const rng = new Rng(7);
    for (let t = 0; t < 5000; t++) {
      const nodes = Array.from({ length: 1 + rng.int(60) }, (_, i) => {
        const capacity = rng.int(6);
        return placementNode(`n${i}`, { capacity, assigned: rng.int(capacity + 2), speed: [0, 0.5, 1, 1, 2, 3][rng.int(6)]! });
      });
      const count = rng.int(40);
      const before = JSON.stringify(nodes);
      expect(planBatch(nodes, count).map((n) => n.id)).toEqual(countedOnNodes(nodes, count));
      expect(JSON.stringify(nodes)).toBe(before);
    }
  });
});
