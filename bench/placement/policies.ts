// Baseline placement policies for the simulator and the throughput bench. They implement the
// scheduler's PlacementStrategy interface, so the simulator treats every policy alike.
import { fits, type PlacementNode } from "../../scheduler/placement/index.js";
import type { NodeLoadObservation } from "../../scheduler/placement/load-model.js";
import { Rng, type PlacementRequest, type PlacementStrategy } from "../../scheduler/placement/strategy.js";

abstract class ScanPolicy<N extends PlacementNode> implements PlacementStrategy<N> {
  abstract readonly name: string;
  protected readonly nodes: N[] = [];
  protected readonly workers = new Map<string, number>();
  protected readonly lastBg = new Map<string, number>();
  addNode(node: N, workers: number): void {
    this.nodes.push(node);
    this.workers.set(node.id, workers);
  }
  removeNode(id: string): void {
    const i = this.nodes.findIndex((n) => n.id === id);
    if (i >= 0) this.nodes.splice(i, 1);
  }
  observeLoad(nodeId: string, s: NodeLoadObservation): void {
    this.lastBg.set(nodeId, Math.max(0, s.cpuUtilization - Math.max(0, s.agentCpuUtilization)));
  }
  observeRun(): void {}
  released(): void {}
  protected abstract pick(req: PlacementRequest, ok: (n: N) => boolean): N | undefined;
  placeBatch(req: PlacementRequest, keys: readonly string[]): N[] {
    const out: N[] = [];
    const ok = (n: N) => n.assigned < n.capacity && fits(req.needs, n);
    for (let i = 0; i < keys.length; i++) {
      const n = this.pick(req, ok);
      if (!n) break;
      n.assigned++;
      out.push(n);
    }
    return out;
  }
}

export class RandomPolicy<N extends PlacementNode> extends ScanPolicy<N> {
  readonly name = "random";
  private readonly rng = new Rng(7);
  protected pick(_req: PlacementRequest, ok: (n: N) => boolean): N | undefined {
    const c = this.nodes.filter(ok);
    return c.length ? c[this.rng.int(c.length)] : undefined;
  }
}

export class RoundRobinPolicy<N extends PlacementNode> extends ScanPolicy<N> {
  readonly name = "round-robin";
  private next = 0;
  protected pick(_req: PlacementRequest, ok: (n: N) => boolean): N | undefined {
    for (let k = 0; k < this.nodes.length; k++) {
      const n = this.nodes[(this.next + k) % this.nodes.length]!;
      if (ok(n)) {
        this.next = (this.next + k + 1) % this.nodes.length;
        return n;
      }
    }
    return undefined;
  }
}

/** Lowest load per core: (our tasks + background busy cores, from the last heartbeat) / cores. */
export class LeastLoadedPolicy<N extends PlacementNode> extends ScanPolicy<N> {
  readonly name = "least-loaded";
  protected pick(_req: PlacementRequest, ok: (n: N) => boolean): N | undefined {
    let best: N | undefined;
    let bestL = Infinity;
    for (const n of this.nodes) {
      if (!ok(n)) continue;
      const w = this.workers.get(n.id) ?? 1;
      const l = (n.assigned + (this.lastBg.get(n.id) ?? 0) * w) / w;
      if (l < bestL) {
        bestL = l;
        best = n;
      }
    }
    return best;
  }
}

/**
 * Kubernetes NodeResourcesFit "LeastAllocated": score = mean over CPU and memory of
 * (allocatable − requested) / allocatable, each task requesting one core and `taskMemory` bytes.
 * Like kube-scheduler it looks at requests, not at measured load or speed.
 */
export class LeastAllocatedPolicy<N extends PlacementNode> extends ScanPolicy<N> {
  readonly name = "k8s-least-allocated";
  constructor(private readonly taskMemory = 256 * 2 ** 20) {
    super();
  }
  protected pick(_req: PlacementRequest, ok: (n: N) => boolean): N | undefined {
    let best: N | undefined;
    let bestS = -Infinity;
    for (const n of this.nodes) {
      if (!ok(n)) continue;
      const cores = this.workers.get(n.id) ?? n.logicalCores;
      const cpu = Math.max(0, cores - n.assigned) / cores;
      const mem = Math.max(0, n.memoryBytes - n.assigned * this.taskMemory) / n.memoryBytes;
      const s = (cpu + mem) / 2;
      if (s > bestS) {
        bestS = s;
        best = n;
      }
    }
    return best;
  }
}
