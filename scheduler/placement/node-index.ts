// Nodes grouped by resource class, so the filter runs once per class instead of once per
// node, and placement samples a few candidates per eligible class (power-of-k choices)
// instead of scanning every node. A class is what the hard constraints and the run-time
// model care about: kernel kinds, GPU count, cores, labels and calibrated speed (bucketed);
// memory varies a little between otherwise equal hosts, so a class keeps its min and max.
import type { ResourceNeeds } from "../model.js";
import { firstUnmet, type FeasibilityCheckName, type PlacementNode } from "./constraints.js";

export interface NodeClass<N extends PlacementNode> {
  key: string;
  nodes: N[];
  sample: N;
  minMemory: number;
  maxMemory: number;
}

/** Speeds within ~9 % of each other share a class (log2 buckets of 1/8). */
const speedBucket = (speed: number) => Math.round(Math.log2(Math.max(speed, 1e-9)) * 8);

export function classKey(n: PlacementNode): string {
  const kinds = [...n.kernelKinds].sort().join(",");
  const labels = Object.entries(n.labels)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  return `${kinds}|g${n.gpuCount}|c${n.logicalCores}|s${speedBucket(n.speed)}|${labels}`;
}

export interface EligibleClass<N extends PlacementNode> {
  cls: NodeClass<N>;
  /** Every node of the class meets the memory need (otherwise check each node). */
  allFit: boolean;
}

/** A class the feasibility checks filtered as a whole, with the check that did (recorded per node when asked). */
export interface FilteredClass<N extends PlacementNode> {
  cls: NodeClass<N>;
  check: FeasibilityCheckName;
  detail: string;
}

export class NodeIndex<N extends PlacementNode> {
  private readonly classes = new Map<string, NodeClass<N>>();
  private readonly where = new Map<string, { cls: NodeClass<N>; pos: number }>();
  private version = 0;
  private cache = new Map<string, { version: number; list: EligibleClass<N>[]; filtered: FilteredClass<N>[] }>();

  get size(): number {
    return this.where.size;
  }

  classOf(id: string): NodeClass<N> | undefined {
    return this.where.get(id)?.cls;
  }

  add(node: N): NodeClass<N> {
    this.remove(node.id);
    const key = classKey(node);
    let cls = this.classes.get(key);
    if (!cls) {
      cls = { key, nodes: [], sample: node, minMemory: node.memoryBytes, maxMemory: node.memoryBytes };
      this.classes.set(key, cls);
    }
    cls.minMemory = Math.min(cls.minMemory, node.memoryBytes);
    cls.maxMemory = Math.max(cls.maxMemory, node.memoryBytes);
    this.where.set(node.id, { cls, pos: cls.nodes.length });
    cls.nodes.push(node);
    this.version++;
    return cls;
  }

  remove(id: string): void {
    const w = this.where.get(id);
    if (!w) return;
    const { cls, pos } = w;
    // Swap-remove keeps the array dense for O(1) sampling.
    const last = cls.nodes.pop()!;
    if (last.id !== id) {
      cls.nodes[pos] = last;
      this.where.set(last.id, { cls, pos });
    }
    this.where.delete(id);
    if (cls.nodes.length === 0) this.classes.delete(cls.key);
    else if (cls.sample.id === id) cls.sample = cls.nodes[0]!;
    this.version++;
  }

  /** Classes that can hold a task with these needs (readiness and room are per node, checked by the caller). */
  eligible(needs: ResourceNeeds): EligibleClass<N>[] {
    return this.judge(needs).list;
  }

  /** Classes no node of which can hold a task with these needs, each with the feasibility check that filtered it. */
  filtered(needs: ResourceNeeds): FilteredClass<N>[] {
    return this.judge(needs).filtered;
  }

  /** The feasibility stage at class level: the same named checks as node by node (feasibleNodes), run once per class. */
  private judge(needs: ResourceNeeds): { list: EligibleClass<N>[]; filtered: FilteredClass<N>[] } {
    const key = needsKey(needs);
    const hit = this.cache.get(key);
    if (hit && hit.version === this.version) return hit;
    const list: EligibleClass<N>[] = [];
    const filtered: FilteredClass<N>[] = [];
    for (const cls of this.classes.values()) {
      // Memory aside, every node of a class answers the constraints alike: test one, as if ready.
      const probe = { ...cls.sample, ready: true, memoryBytes: cls.maxMemory };
      const unmet = firstUnmet(needs, probe);
      if (unmet) filtered.push({ cls, check: unmet.check.name, detail: unmet.detail });
      else list.push({ cls, allFit: needs.memoryBytes <= cls.minMemory });
    }
    if (this.cache.size > 1024) this.cache.clear();
    const judged = { version: this.version, list, filtered };
    this.cache.set(key, judged);
    return judged;
  }

  *nodes(): IterableIterator<N> {
    for (const cls of this.classes.values()) yield* cls.nodes;
  }
}

const needsKey = (n: ResourceNeeds) =>
  `${n.kind}|${n.gpu ? 1 : 0}|${n.cores}|${n.memoryBytes}|${Object.entries(n.nodeSelector).sort().map(([k, v]) => `${k}=${v}`).join(",")}`;
