// Placement's two stages, as Nomad stages them. Feasibility: named checks (FEASIBILITY_CHECKS)
// keep the nodes that can run the task at all and say, per node, why one is filtered
// (feasibility.ts records those verdicts for both strategies and for a pending job's reason).
// Ranking: the capacity strategy's scorer is here (free capacity times calibrated speed, best
// first); the forecast strategy ranks by estimated finish time (strategy.ts). Both skip a full
// node the same way (hasRoom), recorded as exhausted. Pure functions over a small view of each
// node, so the simulator in bench/ runs the same code. They decide; they never change the
// scheduler's nodes (the registry counts what is placed).
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
  /** The registry's state name (NODE_STATE_DRAINING, …), when the view has one: says why a node is not ready. */
  state?: string;
  /** Why the node's agent backs off for its host's own load, when it does (then it is not ready). */
  backingOff?: string;
  /**
   * Its agent yields to the host's own load (runs niced, HardwareProfile.niced): placement's
   * load model then uses the niced sharing model for it (load-model.ts slowdownFactor). Unset:
   * unknown, taken as not niced.
   */
  yields?: boolean;
}

/**
 * The hard constraints, named (Nomad's feasibility checks): each says why one node is filtered
 * out (`unmet`), and how a count of such nodes reads in a job's unschedulable reason (`summary`).
 * The filter below and the reason a pending job shows (feasibility.ts) run the very same checks.
 */
export type FeasibilityCheckName = "state" | "kernel_kind" | "gpu" | "cores" | "memory" | "node_selector";

export interface FeasibilityCheck {
  name: FeasibilityCheckName;
  unmet(needs: ResourceNeeds, node: PlacementNode): string | undefined;
  summary(count: number, needs: ResourceNeeds): string;
}

const have = (n: number) => (n === 1 ? "has" : "have");

/** Why a node is not ready, as far as its view tells: draining, down, or (no state, or still registering) not ready. */
const notReadyDetail = (node: PlacementNode): string =>
  node.backingOff ? `backing off: ${node.backingOff}` : node.state === "NODE_STATE_DRAINING" ? "draining" : node.state === "NODE_STATE_DOWN" ? "down" : "not ready";

export const FEASIBILITY_CHECKS: readonly FeasibilityCheck[] = [
  { name: "state", unmet: (_, node) => (node.ready ? undefined : notReadyDetail(node)), summary: (k) => `${k} ${k === 1 ? "is" : "are"} not ready` },
  {
    name: "kernel_kind",
    unmet: (needs, node) => (node.kernelKinds.has(needs.kind) ? undefined : `cannot run ${needs.kind} kernels`),
    summary: (k, needs) => `${k} cannot run ${needs.kind.replace("KERNEL_KIND_", "").toLowerCase()} kernels`,
  },
  { name: "gpu", unmet: (needs, node) => (needs.gpu && node.gpuCount === 0 ? "has no GPU" : undefined), summary: (k) => `${k} ${have(k)} no GPU` },
  {
    name: "cores",
    unmet: (needs, node) => (needs.cores > node.logicalCores ? `has ${node.logicalCores} cores, needs ${needs.cores}` : undefined),
    summary: (k, needs) => `${k} ${have(k)} fewer than ${needs.cores} cores`,
  },
  {
    name: "memory",
    unmet: (needs, node) => (needs.memoryBytes > node.memoryBytes ? `has ${node.memoryBytes} bytes of memory, needs ${needs.memoryBytes}` : undefined),
    summary: (k, needs) => `${k} ${have(k)} less than ${needs.memoryBytes} bytes of memory`,
  },
  {
    name: "node_selector",
    unmet: (needs, node) => {
      for (const [key, value] of Object.entries(needs.nodeSelector)) {
        if (node.labels[key] !== value) return `label ${key}=${node.labels[key] ?? "(unset)"}, needs ${value}`;
      }
      return undefined;
    },
    summary: (k, needs) => `${k} ${k === 1 ? "does" : "do"} not match node selector ${Object.entries(needs.nodeSelector).map(([a, b]) => `${a}=${b}`).join(",")}`,
  },
];

/** The first unmet hard constraint with its check's name, or undefined when the node fits. */
export function firstUnmet(needs: ResourceNeeds, node: PlacementNode): { check: FeasibilityCheck; detail: string } | undefined {
  for (const check of FEASIBILITY_CHECKS) {
    const detail = check.unmet(needs, node);
    if (detail !== undefined) return { check, detail };
  }
  return undefined;
}

/** The first unmet hard constraint, or undefined when the node fits. */
export function unmetConstraint(needs: ResourceNeeds, node: PlacementNode): string | undefined {
  return firstUnmet(needs, node)?.detail;
}

export const fits = (needs: ResourceNeeds, node: PlacementNode): boolean => unmetConstraint(needs, node) === undefined;

export function filterNodes<N extends PlacementNode>(needs: ResourceNeeds, nodes: Iterable<N>): N[] {
  const out: N[] = [];
  for (const n of nodes) if (fits(needs, n)) out.push(n);
  return out;
}

/**
 * Tasks a batch has placed on each node so far (node id → count), on top of `assigned`: a
 * strategy decides a batch without writing to the nodes, and whoever owns them counts the decisions.
 */
export type BatchTally = Map<string, number>;

/** Tasks on the node, counting those the batch in progress has placed there. */
export const assignedIn = (node: PlacementNode, tally: BatchTally): number => node.assigned + (tally.get(node.id) ?? 0);

/**
 * The ranking stage's room check, shared by both strategies: a feasible node that already holds
 * its capacity (counting the batch's own choices) takes no more now. Nomad calls such a node
 * exhausted; the metrics record it apart from the filtered ones (it may take the task later).
 */
export const hasRoom = (node: PlacementNode, tally?: BatchTally): boolean => (tally ? assignedIn(node, tally) : node.assigned) < node.capacity;

/** How an exhausted node reads in the placement metrics. */
export const exhaustedDetail = (node: PlacementNode, tally?: BatchTally): string => `full (${tally ? assignedIn(node, tally) : node.assigned}/${node.capacity} tasks)`;

/** Free capacity times speed: a fast node with room scores highest; a full node scores ≤ 0. */
export function score(node: PlacementNode): number {
  return (node.capacity - node.assigned) * node.speed;
}

/** The best-scoring candidate with room left, or undefined when every candidate is full. */
export function chooseNode<N extends PlacementNode>(candidates: readonly N[]): N | undefined {
  let best: N | undefined;
  let bestScore = 0;
  for (const n of candidates) {
    if (!hasRoom(n)) continue;
    const s = score(n);
    if (s > bestScore) {
      best = n;
      bestScore = s;
    }
  }
  return best;
}

/** Batches up to this size are planned over their top candidates only (see planBatch). */
const SHORTLIST_MAX = 32;

/**
 * Chooses nodes for up to `count` tasks of one job on `candidates` by the capacity score,
 * without changing them: the batch counts its own choices in local free-slot counts, and makes
 * the very choices chooseNode would if each were counted on the node. Returns the chosen node
 * per task, in order; shorter than `count` when capacity ran out.
 *
 * A small batch is planned over a shortlist: the `count` best candidates by their score before
 * the batch (ties: earlier first). Only a chosen node's score falls, so at each choice some
 * shortlisted node not chosen yet still scores at least as well as any node left out, and ranks
 * ahead of it: nodes off the shortlist never win. One pass over the nodes, then count × count.
 */
export function planBatch<N extends PlacementNode>(candidates: readonly N[], count: number): N[] {
  if (count <= 0) return [];
  let pool: readonly N[] = candidates;
  if (count <= SHORTLIST_MAX && candidates.length > count) {
    // Kept sorted best first; `order` keeps the candidates' own order for ties.
    const top: { node: N; score: number; order: number }[] = [];
    for (let i = 0; i < candidates.length; i++) {
      const n = candidates[i]!;
      if (!hasRoom(n)) continue;
      const sc = score(n);
      if (sc <= 0 || (top.length === count && sc <= top[count - 1]!.score)) continue;
      let at = top.length;
      while (at > 0 && top[at - 1]!.score < sc) at--;
      top.splice(at, 0, { node: n, score: sc, order: i });
      if (top.length > count) top.pop();
    }
    pool = top.sort((a, b) => a.order - b.order).map((t) => t.node);
  }
  const out: N[] = [];
  const free = new Float64Array(pool.length);
  for (let i = 0; i < pool.length; i++) free[i] = pool[i]!.capacity - pool[i]!.assigned;
  for (let k = 0; k < count; k++) {
    let best = -1;
    let bestScore = 0;
    for (let i = 0; i < free.length; i++) {
      const f = free[i]!;
      if (f <= 0) continue;
      const sc = f * pool[i]!.speed;
      if (sc > bestScore) {
        best = i;
        bestScore = sc;
      }
    }
    if (best < 0) break;
    free[best]!--;
    out.push(pool[best]!);
  }
  return out;
}

/**
 * For simulators and tests that own their node views (bench/placement/, test/): counts placed
 * tasks on those views, as the scheduler's registry does on its nodes (NodeRegistry.addTask).
 * The scheduler itself never calls it.
 */
export function countPlacedOnViews(placed: readonly PlacementNode[]): void {
  for (const node of placed) node.assigned++;
}

/** planBatch, then the choices counted on the views (simulators and tests; see countPlacedOnViews). */
export function placeBatch<N extends PlacementNode>(candidates: readonly N[], count: number): N[] {
  const out = planBatch(candidates, count);
  countPlacedOnViews(out);
  return out;
}
