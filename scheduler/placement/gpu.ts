// GPU-aware candidate selection. A gpu.js kernel goes to nodes whose profile has a usable GPU
// backend (KERNEL_KIND_GPU in kernel_kinds, i.e. a GL context really opened there). A job that
// allows the CPU fallback runs in gpu.js cpu mode on any node with a gpu.js executor, but only
// while no GPU node is ready — GPU nodes that are merely busy are waited for.
import type { ResourceNeeds } from "../model.js";
import { filterNodes, unmetConstraint, type PlacementNode } from "./constraints.js";

export function candidatesFor<N extends PlacementNode>(needs: ResourceNeeds, nodes: readonly N[]): N[] {
  const strict = filterNodes(needs, nodes);
  if (needs.kind !== "KERNEL_KIND_GPU" || strict.length > 0 || needs.gpuFallback !== "GPU_FALLBACK_CPU") return strict;
  // Same hard constraints as CPU work, plus a running gpu.js executor (any backend).
  const cpuNeeds: ResourceNeeds = { ...needs, kind: "KERNEL_KIND_WASM" };
  return nodes.filter((n) => !!n.gpuBackend && unmetConstraint(cpuNeeds, n) === undefined);
}

/** Why a REJECT job cannot be accepted now, or undefined when some ready node has a GPU backend. */
export function gpuRejection<N extends PlacementNode>(needs: ResourceNeeds, nodes: readonly N[]): string | undefined {
  if (needs.kind !== "KERNEL_KIND_GPU" || needs.gpuFallback !== "GPU_FALLBACK_REJECT") return undefined;
  if (filterNodes(needs, nodes).length > 0) return undefined;
  const ready = nodes.filter((n) => n.ready);
  const detail = ready.length
    ? ready.map((n) => `${n.id}: ${n.gpuBackend ? `gpu backend ${n.gpuBackend}` : "no gpu.js executor"}`).join(", ")
    : "no agents are ready";
  return `no ready agent has a usable GPU backend (headlessgl) for this gpu kernel (${detail}); submit with gpu_fallback=GPU_FALLBACK_CPU to run it in gpu.js cpu mode, or GPU_FALLBACK_WAIT to queue until a GPU agent joins`;
}

/**
 * The constraints to place a job's tasks under right now: a gpu.js job that allows the CPU
 * fallback is placed like CPU work while no ready node has a GPU backend (its tasks then run in
 * gpu.js cpu mode); everything else keeps its own needs.
 */
export function placementNeeds<N extends PlacementNode>(needs: ResourceNeeds, ready: readonly N[]): ResourceNeeds {
  if (needs.kind !== "KERNEL_KIND_GPU" || needs.gpuFallback !== "GPU_FALLBACK_CPU") return needs;
  if (filterNodes(needs, ready).length > 0) return needs;
  return { ...needs, kind: "KERNEL_KIND_WASM" };
}
