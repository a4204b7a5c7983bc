// Placement throughput on one core: nodes in realistic resource classes, a steady stream of
// 16-task batches, tasks released as they "finish" so nodes stay about half full.
import type { PlacementNode } from "../../scheduler/placement/index.js";
import { CapacityPlacement, ForecastPlacement, Rng, type PlacementStrategy } from "../../scheduler/placement/strategy.js";
import { LeastLoadedPolicy } from "./policies.js";

interface TNode extends PlacementNode {
  workers: number;
}

function makeNodes(n: number, seed: number): TNode[] {
  const rng = new Rng(seed);
  const cores = [4, 8, 16, 32];
  const speeds = [0.5, 1, 2, 4];
  const out: TNode[] = [];
  for (let i = 0; i < n; i++) {
    const c = cores[rng.int(cores.length)]!;
    out.push({
      id: `n${i}`,
      ready: true,
      logicalCores: c,
      memoryBytes: c * 2 * 2 ** 30,
      gpuCount: rng.next() < 0.1 ? 1 : 0,
      kernelKinds: new Set(["KERNEL_KIND_WASM"]),
      labels: { zone: `z${rng.int(2)}` },
      capacity: c * 3,
      assigned: 0,
      speed: speeds[rng.int(speeds.length)]!,
      workers: c,
    });
  }
  return out;
}

export interface ThroughputResult {
  policy: string;
  nodes: number;
  placements: number;
  seconds: number;
  perSecond: number;
}

export function measureThroughput(make: () => PlacementStrategy<TNode>, nodeCount: number, budgetMs = 1500): ThroughputResult {
  const nodes = makeNodes(nodeCount, 42);
  const policy = make();
  for (const n of nodes) policy.addNode(n, n.workers);
  // One load sample per node so background forecasts exist (1 s heartbeats, mildly loaded).
  const rng = new Rng(5);
  for (const n of nodes) {
    for (let t = 0; t < 3; t++) policy.observeLoad(n.id, { atMs: t * 1000, cpuUtilization: 0.3 * rng.next(), agentCpuUtilization: 0, runningTasks: 0, queuedTasks: 0 });
  }
  const live: { key: string; node: TNode }[] = [];
  let head = 0; // live[head..] are placed and unfinished (an index, not shift(): O(1) per task)
  const totalCap = nodes.reduce((s, n) => s + n.capacity, 0);
  const needs = { cores: 0, memoryBytes: 0, gpu: false, nodeSelector: {}, kind: "KERNEL_KIND_WASM" as const };
  let placed = 0;
  let job = 0;
  const keys = Array.from({ length: 16 }, (_, i) => i);
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < budgetMs) {
    for (let b = 0; b < 32; b++) {
      const id = job++;
      const ks = keys.map((i) => `j${id}/${i}`);
      const got = policy.placeBatch({ kernelId: `k${id % 4}`, needs }, ks);
      for (let i = 0; i < got.length; i++) live.push({ key: ks[i]!, node: got[i]! });
      placed += got.length;
      // Finish the oldest tasks to hold occupancy near half of capacity; when the policy chose to
      // keep tasks queued for a busy faster node (late binding), let the oldest finish first.
      const target = got.length < ks.length ? Math.max(0, live.length - head - ks.length) : totalCap / 2;
      while (live.length - head > target) {
        const t = live[head++]!;
        t.node.assigned--;
        policy.observeRun(t.key, `k${id % 4}`, t.node.id, 100 / t.node.speed);
        policy.released(t.key);
      }
    }
    if (head > 1 << 16) {
      live.splice(0, head);
      head = 0;
    }
    elapsed = performance.now() - start;
  }
  return { policy: policy.name, nodes: nodeCount, placements: placed, seconds: elapsed / 1000, perSecond: placed / (elapsed / 1000) };
}

export const THROUGHPUT_POLICIES: Record<string, () => PlacementStrategy<TNode>> = {
  forecast: () => new ForecastPlacement<TNode>({ stepMs: 1000, seed: 1 }),
  capacity: () => new CapacityPlacement<TNode>(),
  "least-loaded": () => new LeastLoadedPolicy<TNode>(),
};
