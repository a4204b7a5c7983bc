// Why a job's tasks cannot be placed, Nomad style ("0/2 nodes: 2 have fewer than 4096 cores"):
// the named checks of index.ts run over every live node, each filtered node is recorded with the
// check that filtered it, and the reason is built from those counts. Readiness is left out: a
// node that is only busy or draining could still take the job later.
import type { ResourceNeeds } from "../model.js";
import { FEASIBILITY_CHECKS, firstUnmet, type PlacementNode } from "./constraints.js";
import { placementNeeds } from "./gpu.js";

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
  const filtered = new Map<string, { check: string; detail: string }>();
  const byCheck = new Map<string, number>();
  for (const node of asReady) {
    const unmet = firstUnmet(effective, node);
    if (!unmet) continue;
    filtered.set(node.id, { check: unmet.check.name, detail: unmet.detail });
    byCheck.set(unmet.check.name, (byCheck.get(unmet.check.name) ?? 0) + 1);
  }
  const eligible = nodes.length - filtered.size;
  let reason = "";
  if (eligible === 0) {
    const parts = FEASIBILITY_CHECKS.filter((c) => byCheck.has(c.name)).map((c) => c.summary(byCheck.get(c.name)!, effective));
    reason = nodes.length === 0 ? "0/0 nodes: no agent is registered" : `0/${nodes.length} nodes: ${parts.join("; ")}`;
  }
  return { total: nodes.length, eligible, filtered, reason };
}

/** The reason a job's queued tasks wait, or "" when the job is over, has none queued, or some node fits. */
export function unschedulableReason(
  job: { state: string; needs: ResourceNeeds; counts: Record<string, number> },
  nodes: readonly (PlacementNode & { state?: string })[],
): string {
  if (["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"].includes(job.state) || !job.counts["TASK_STATE_PENDING"]) return "";
  return explainFeasibility(job.needs, nodes.filter((n) => n.state !== "NODE_STATE_DOWN")).reason;
}
