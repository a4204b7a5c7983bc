// The feasibility stage of placement and what it records, Nomad style. Both strategies filter
// through feasibleNodes (the capacity strategy node by node; the forecast strategy once per
// resource class, node-index.ts) and record every node they drop in a PlacementMetrics (Nomad's
// AllocMetric): the named check that filtered it and why, or that it was feasible but full
// (exhausted, from the ranking stage). A pending job's reason ("0/2 nodes: 2 have fewer than
// 4096 cores", GetJob and `distx jobs`) is built by the very same function over every live
// node, judged as if ready: a node that is only busy or draining could still take the job later.
import type { ResourceNeeds } from "../model.js";
import { FEASIBILITY_CHECKS, exhaustedDetail, firstUnmet, type BatchTally, type FeasibilityCheckName, type PlacementNode } from "./constraints.js";
import { placementNeeds } from "./gpu.js";

/** Why one node did not get a task: a feasibility check it failed, or "capacity" (feasible, full). */
export interface NodeVerdict {
  check: FeasibilityCheckName | "capacity";
  detail: string;
}

/** What one placement looked at and why it dropped nodes; the reasons a user sees are read from it. */
export class PlacementMetrics {
  /** Node id → the feasibility check that filtered it, with the detail. */
  readonly filtered = new Map<string, NodeVerdict>();
  /** Node id → why a feasible node took nothing (it was full). */
  readonly exhausted = new Map<string, NodeVerdict>();

  filter(nodeId: string, check: FeasibilityCheckName, detail: string): void {
    this.filtered.set(nodeId, { check, detail });
  }

  exhaust(node: PlacementNode, tally?: BatchTally): void {
    if (!this.filtered.has(node.id)) this.exhausted.set(node.id, { check: "capacity", detail: exhaustedDetail(node, tally) });
  }

  /** Filtered nodes per check, in the checks' order. */
  countsByCheck(): Map<FeasibilityCheckName, number> {
    const counts = new Map<FeasibilityCheckName, number>();
    for (const { check } of this.filtered.values()) if (check !== "capacity") counts.set(check, (counts.get(check) ?? 0) + 1);
    return new Map(FEASIBILITY_CHECKS.filter((c) => counts.has(c.name)).map((c) => [c.name, counts.get(c.name)!]));
  }

  /** "2 have fewer than 4 cores; 1 is full": the filtered nodes by check, then the exhausted ones. */
  summary(needs: ResourceNeeds): string {
    const counts = this.countsByCheck();
    const parts = FEASIBILITY_CHECKS.filter((c) => counts.has(c.name)).map((c) => c.summary(counts.get(c.name)!, needs));
    const full = this.exhausted.size;
    if (full > 0) parts.push(`${full} ${full === 1 ? "is" : "are"} full`);
    return parts.join("; ");
  }
}

/** The feasibility stage: the nodes that pass every named check; each one dropped is recorded in `metrics` with its check. */
export function feasibleNodes<N extends PlacementNode>(needs: ResourceNeeds, nodes: Iterable<N>, metrics?: PlacementMetrics): N[] {
  const out: N[] = [];
  for (const node of nodes) {
    const unmet = firstUnmet(needs, node);
    if (!unmet) out.push(node);
    else metrics?.filter(node.id, unmet.check.name, unmet.detail);
  }
  return out;
}

export interface FeasibilityReport {
  /** Live nodes looked at, and how many of them could ever take the job's tasks. */
  total: number;
  eligible: number;
  /** Node id → the check that filtered it and why. */
  filtered: Map<string, { check: string; detail: string }>;
  /** "0/2 nodes: 2 have fewer than 4096 cores"; empty when some node fits. */
  reason: string;
}

export function explainFeasibility(needs: ResourceNeeds, nodes: readonly PlacementNode[]): FeasibilityReport {
  // Judge every node as if ready: this asks "could it ever", not "can it now".
  const asReady = nodes.map((n) => ({ ...n, ready: true }));
  const effective = placementNeeds(needs, asReady);
  const metrics = new PlacementMetrics();
  const eligible = feasibleNodes(effective, asReady, metrics).length;
  let reason = "";
  if (eligible === 0) reason = nodes.length === 0 ? "0/0 nodes: no agent is registered" : `0/${nodes.length} nodes: ${metrics.summary(effective)}`;
  return { total: nodes.length, eligible, filtered: metrics.filtered, reason };
}

/** The reason a job's queued tasks wait, or "" when the job is over, has none queued, or some node fits. */
export function unschedulableReason(
  job: { state: string; needs: ResourceNeeds; counts: Record<string, number> },
  nodes: readonly (PlacementNode & { state?: string })[],
): string {
  if (["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"].includes(job.state) || !job.counts["TASK_STATE_PENDING"]) return "";
  return explainFeasibility(job.needs, nodes.filter((n) => n.state !== "NODE_STATE_DOWN")).reason;
}
