// Placement: first keep the nodes that can run the task at all (hard constraints), then
// score the rest by free capacity times calibrated speed and take the best.
// Pure functions over a small view of each node, so the simulator in bench/ runs the same code.
import type { ResourceNeeds } from "../model.js";

export interface PlacementNode {
  id: string;
  ready: boolean;
  logicalCores: number;
  memoryBytes: number;
  gpuCount: number;
  kernelKinds: ReadonlySet<string>;
  labels: Readonly<Record<string, string>>;
  /** Tasks the node can hold at once (workers plus prefetch). */
  capacity: number;
  /** Tasks placed there and not yet finished. */
  assigned: number;
  /** Calibrated speed of one worker, in operations per second (1 when uncalibrated). */
  speed: number;
  /** The node's gpu.js executor backend: "headlessgl", "cpu", or "" / unset when it has none. */
  gpuBackend?: string;
}

export interface Rejection {
  nodeId: string;
  reason: string;
}

/** The first unmet hard constraint, or undefined when the node fits. */
export function unmetConstraint(needs: ResourceNeeds, node: PlacementNode): string | undefined {
  if (!node.ready) return "not ready";
  if (!node.kernelKinds.has(needs.kind)) return `cannot run ${needs.kind} kernels`;
  if (needs.gpu && node.gpuCount === 0) return "has no GPU";
  if (needs.cores > node.logicalCores) return `has ${node.logicalCores} cores, needs ${needs.cores}`;
  if (needs.memoryBytes > node.memoryBytes) return `has ${node.memoryBytes} bytes of memory, needs ${needs.memoryBytes}`;
  for (const [key, value] of Object.entries(needs.nodeSelector)) {
    if (node.labels[key] !== value) return `label ${key}=${node.labels[key] ?? "(unset)"}, needs ${value}`;
  }
  return undefined;
}

export const fits = (needs: ResourceNeeds, node: PlacementNode): boolean => unmetConstraint(needs, node) === undefined;

export function filterNodes<N extends PlacementNode>(needs: ResourceNeeds, nodes: Iterable<N>): N[] {
  const out: N[] = [];
  for (const n of nodes) if (fits(needs, n)) out.push(n);
  return out;
}

/** Free capacity times speed: a fast node with room scores highest; a full node scores ≤ 0. */
export function score(node: PlacementNode): number {
  return (node.capacity - node.assigned) * node.speed;
}

/** The best-scoring candidate with room left, or undefined when every candidate is full. */
export function chooseNode<N extends PlacementNode>(candidates: readonly N[]): N | undefined {
  let best: N | undefined;
  let bestScore = 0;
  for (const n of candidates) {
    if (n.assigned >= n.capacity) continue;
    const s = score(n);
    if (s > bestScore) {
      best = n;
      bestScore = s;
    }
  }
  return best;
}

/**
 * Places up to `count` tasks of one job on `candidates`, updating their `assigned` counts.
 * Returns the chosen node per task, in order; shorter than `count` when capacity ran out.
 */
export function placeBatch<N extends PlacementNode>(candidates: readonly N[], count: number): N[] {
  const out: N[] = [];
  for (let i = 0; i < count; i++) {
    const node = chooseNode(candidates);
    if (!node) break;
    node.assigned++;
    out.push(node);
  }
  return out;
}
