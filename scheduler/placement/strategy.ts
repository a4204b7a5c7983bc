// Placement strategies: the object the scheduler's dispatch asks where tasks go. The
// simulator in bench/placement/ drives the very same classes. A strategy decides (plan); it
// does not write to the scheduler's nodes: the registry counts each placed task (addTask).
// Both run the same two stages: feasibility (the named checks of constraints.ts, through
// feasibility.ts, which records per node why it was filtered), then ranking, where a full node
// is skipped (hasRoom) and recorded as exhausted. Only the ranking differs:
//
//   capacity — the original scorer: free capacity × calibrated speed, over every node.
//   forecast — estimated finish time = forecast wait on the node + expected run time there,
//              over a power-of-k sample of each eligible resource class (see docs/placement.md).
import type { ResourceNeeds } from "../model.js";
import { assignedIn, countPlacedOnViews, firstUnmet, hasRoom, planBatch, type BatchTally, type PlacementNode } from "./constraints.js";
import { feasibleNodes, type PlacementMetrics } from "./feasibility.js";
import { NodeLoadModel, type LoadModelOptions, type NodeLoadObservation } from "./load-model.js";
import { NodeIndex } from "./node-index.js";
import { RuntimeModel, type RuntimeNode } from "./runtime-model.js";

export interface PlacementRequest {
  kernelId: string;
  needs: ResourceNeeds;
}

export interface PlacementStrategy<N extends PlacementNode> {
  readonly name: string;
  addNode(node: N, workers: number): void;
  removeNode(id: string): void;
  observeLoad(nodeId: string, sample: NodeLoadObservation): void;
  /** A task (key) finished on nodeId after runMs of run time. */
  observeRun(key: string, kernelId: string, nodeId: string, runMs: number): void;
  /**
   * For simulators that own their node views: chooses a node for each task key, in order, and
   * counts it on that view (`assigned`). Returns fewer nodes than keys when every fitting node is full.
   */
  placeBatch(req: PlacementRequest, keys: readonly string[]): N[];
  /** The task (key) no longer occupies its node (finished, cancelled, taken back, node lost). */
  released(key: string): void;
  /** The node model, where the strategy keeps one (forecast strategy). */
  loadModel?(nodeId: string): NodeLoadModel | undefined;
}

/** A strategy the scheduler can use: it also decides without counting (the registry counts). */
export interface PlanningStrategy<N extends PlacementNode> extends PlacementStrategy<N> {
  /**
   * As placeBatch, but the nodes are left unchanged: the caller applies the decisions. Given
   * `metrics`, records each node it dropped and why (filtered by a named check, or full).
   */
  plan(req: PlacementRequest, keys: readonly string[], metrics?: PlacementMetrics): N[];
}

/** Deterministic xorshift32, so placements (and the tests) are reproducible with a seed. */
export class Rng {
  private s: number;
  constructor(seed = 0x9e3779b9) {
    this.s = seed >>> 0 || 1;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

// ───────────────────────────── capacity (the original scorer) ─────────────────────────────

export class CapacityPlacement<N extends PlacementNode> implements PlanningStrategy<N> {
  readonly name = "capacity";
  private readonly nodes = new Map<string, N>();
  addNode(node: N): void {
    this.nodes.set(node.id, node);
  }
  removeNode(id: string): void {
    this.nodes.delete(id);
  }
  observeLoad(): void {}
  observeRun(): void {}
  released(): void {}
  plan(req: PlacementRequest, keys: readonly string[], metrics?: PlacementMetrics): N[] {
    const feasible = feasibleNodes(req.needs, this.nodes.values(), metrics);
    if (metrics) for (const n of feasible) if (!hasRoom(n)) metrics.exhaust(n);
    return planBatch(feasible, keys.length);
  }
  placeBatch(req: PlacementRequest, keys: readonly string[]): N[] {
    const out = this.plan(req, keys);
    countPlacedOnViews(out);
    return out;
  }
}

// ───────────────────────────── forecast (estimated finish time) ─────────────────────────────

export interface ForecastPlacementOptions {
  /** Heartbeat interval: the load forecaster's step (ms). */
  stepMs: number;
  /** false: use the last load sample instead of the forecast ("ours without forecast"). */
  useForecast?: boolean;
  /** Candidates sampled per placement across all eligible classes (default 32). */
  sampleBudget?: number;
  /** Evaluate every node when the eligible nodes number at most this (default 64). */
  exhaustiveBelow?: number;
  seed?: number;
  /**
   * Also score full nodes by when they could take the task; if one of them is still the best,
   * leave the task queued (late binding) rather than give it to a slower node now. Default true.
   */
  waitForBetter?: boolean;
  loadModel?: Omit<LoadModelOptions, "stepMs" | "workers" | "useForecast">;
}

interface NodeState {
  rt: RuntimeNode;
  load: NodeLoadModel;
  workers: number;
  /** Unloaded run time (ms) of our tasks placed on the node and not yet finished. */
  backlogMs: number;
  /** EWMA of actual / predicted run time: > 1 when the node runs behind its forecast. */
  lag: number;
}

interface Placed {
  nodeId: string;
  kernelId: string;
  runMs: number; // unloaded estimate, counted in backlogMs
  predictedMs: number; // with the slowdown forecast at placement
}

/** Estimated finish time (ms from now) of one more task of `runMs` on a node; see docs/placement.md. */
export function finishEstimate(runMs: number, backlogMs: number, assigned: number, workers: number, slowdown: number): number {
  const wait = assigned < workers ? 0 : backlogMs / Math.max(1, workers);
  return (wait + runMs) * slowdown;
}

export class ForecastPlacement<N extends PlacementNode> implements PlanningStrategy<N> {
  readonly name: string;
  readonly runtime = new RuntimeModel();
  readonly index = new NodeIndex<N>();
  private readonly state = new Map<string, NodeState>();
  private readonly placed = new Map<string, Placed>();
  private readonly rng: Rng;
  private readonly budget: number;
  private readonly exhaustiveBelow: number;
  private readonly waitForBetter: boolean;
  /** Counters for the bench and metrics. */
  readonly stats = { placements: 0, evaluated: 0, fallbacks: 0 };

  constructor(private readonly options: ForecastPlacementOptions) {
    this.name = options.useForecast === false ? "finish-time" : "forecast";
    this.rng = new Rng(options.seed);
    this.budget = options.sampleBudget ?? 32;
    this.exhaustiveBelow = options.exhaustiveBelow ?? 64;
    this.waitForBetter = options.waitForBetter ?? true;
  }

  addNode(node: N, workers: number): void {
    const cls = this.index.add(node);
    const prev = this.state.get(node.id);
    const st: NodeState = prev ?? {
      rt: { id: node.id, cls: cls.key, speed: node.speed },
      load: new NodeLoadModel({ ...this.options.loadModel, stepMs: this.options.stepMs, workers: Math.max(1, workers), useForecast: this.options.useForecast !== false }),
      workers: Math.max(1, workers),
      backlogMs: 0,
      lag: 1,
    };
    st.rt.cls = cls.key;
    // Per node: what its registration says (HardwareProfile.niced), else the strategy's option (the bench's).
    st.load.yields = node.yields ?? this.options.loadModel?.yields ?? false;
    this.state.set(node.id, st);
  }

  removeNode(id: string): void {
    this.index.remove(id);
    this.state.delete(id);
    this.runtime.forgetNode(id);
  }

  loadModel(nodeId: string): NodeLoadModel | undefined {
    return this.state.get(nodeId)?.load;
  }

  observeLoad(nodeId: string, sample: NodeLoadObservation): void {
    this.state.get(nodeId)?.load.observe(sample);
  }

  observeRun(key: string, kernelId: string, nodeId: string, runMs: number): void {
    const st = this.state.get(nodeId);
    if (!st) return;
    const sd = st.load.currentSlowdown(Math.min(st.workers, Math.max(1, st.load.lastSample?.runningTasks ?? 1)));
    this.runtime.observe(kernelId, st.rt, runMs, sd);
    const p = this.placed.get(key);
    if (p && p.nodeId === nodeId && p.predictedMs > 0) {
      const ratio = Math.min(20, Math.max(0.05, runMs / p.predictedMs));
      st.lag += 0.3 * (ratio - st.lag);
    }
  }

  released(key: string): void {
    const p = this.placed.get(key);
    if (!p) return;
    this.placed.delete(key);
    const st = this.state.get(p.nodeId);
    if (st) st.backlogMs = Math.max(0, st.backlogMs - p.runMs);
  }

  /** Estimated finish (ms) of a task of `kernelId` placed on `node` now. */
  estimate(node: N, kernelId: string): number {
    const st = this.state.get(node.id);
    if (!st) return Number.POSITIVE_INFINITY;
    return this.estimateWith(node.assigned, st, kernelId);
  }

  /** `assigned`: the node's tasks, counting those the batch in progress has placed there. */
  private estimateWith(assigned: number, st: NodeState, kernelId: string): number {
    const run = this.runtime.estimate(kernelId, st.rt);
    const threads = Math.min(assigned + 1, st.workers);
    // A node running behind its forecast is believed only partly: lag stretches its queue wait.
    const backlog = st.backlogMs * Math.max(1, st.lag);
    // Forecast term: the background the task meets over its whole expected span (queue wait,
    // then run), not just now: a node whose periodic batch or owner's load is about to start is
    // slower than it looks (load-model.ts finishOver walks the forecast path).
    return st.load.finishOver(threads, assigned < st.workers ? 0 : backlog / st.workers, run);
  }

  placeBatch(req: PlacementRequest, keys: readonly string[]): N[] {
    const out = this.plan(req, keys);
    countPlacedOnViews(out);
    return out;
  }

  plan(req: PlacementRequest, keys: readonly string[], metrics?: PlacementMetrics): N[] {
    const out: N[] = [];
    const tally: BatchTally = new Map();
    const eligible = this.index.eligible(req.needs);
    // A filtered class's nodes are recorded node by node, through the same stage as the capacity strategy's.
    if (metrics) for (const f of this.index.filtered(req.needs)) feasibleNodes(req.needs, f.cls.nodes, metrics);
    if (eligible.length === 0) return out;
    let total = 0;
    for (const e of eligible) total += e.cls.nodes.length;
    const exhaustive = total <= this.exhaustiveBelow;
    const perClass = Math.max(2, Math.ceil(this.budget / eligible.length));
    const mem = req.needs.memoryBytes;
    for (const key of keys) {
      let best: N | undefined;
      let bestSt: NodeState | undefined;
      let bestT = Number.POSITIVE_INFINITY;
      let fullT = Number.POSITIVE_INFINITY;
      const consider = (n: N, allFit: boolean) => {
        if (!n.ready || (!allFit && n.memoryBytes < mem)) {
          // Per node, the class's checks left to run (state, memory): the same named checks.
          if (metrics) {
            const unmet = firstUnmet(req.needs, n);
            if (unmet) metrics.filter(n.id, unmet.check.name, unmet.detail);
          }
          return;
        }
        const st = this.state.get(n.id);
        if (!st) return;
        const assigned = assignedIn(n, tally);
        const full = !hasRoom(n, tally);
        if (full) metrics?.exhaust(n, tally);
        if (full && !this.waitForBetter) return;
        this.stats.evaluated++;
        const t = this.estimateWith(assigned, st, req.kernelId);
        if (full) {
          if (t < fullT) fullT = t;
          return;
        }
        if (t < bestT) {
          best = n;
          bestSt = st;
          bestT = t;
        }
      };
      for (const { cls, allFit } of eligible) {
        const nodes = cls.nodes;
        if (exhaustive || nodes.length <= perClass) for (const n of nodes) consider(n, allFit);
        else for (let s = 0; s < perClass; s++) consider(nodes[this.rng.int(nodes.length)]!, allFit);
      }
      if (!best && !exhaustive) {
        // The sample found only full nodes; scan once so "all full" is never a sampling accident.
        this.stats.fallbacks++;
        for (const { cls, allFit } of eligible) for (const n of cls.nodes) consider(n, allFit);
      }
      if (!best || !bestSt) break;
      // A full node would still finish it sooner (it frees a slot within that time): wait for it.
      if (fullT < bestT) {
        break;
      }
      this.commit(key, best, bestSt, req.kernelId, tally);
      out.push(best);
    }
    return out;
  }

  private commit(key: string, node: N, st: NodeState, kernelId: string, tally: BatchTally): void {
    this.released(key); // a key placed again (taken back, retried) is not counted twice
    const run = this.runtime.estimate(kernelId, st.rt);
    const sd = st.load.slowdown(Math.min(assignedIn(node, tally) + 1, st.workers));
    tally.set(node.id, (tally.get(node.id) ?? 0) + 1);
    st.backlogMs += run;
    this.placed.set(key, { nodeId: node.id, kernelId, runMs: run, predictedMs: run * sd });
    this.stats.placements++;
  }

  /**
   * How many of the tasks queued (placed, not started) on `node` should move: its queue is
   * predicted to start the last of them much later than another node would finish one.
   * `minGainMs` keeps small differences from shuffling tasks around.
   */
  rebalanceCount(node: N, req: PlacementRequest, minGainMs: number): number {
    const st = this.state.get(node.id);
    if (!st) return 0;
    const queued = node.assigned - st.workers;
    if (queued <= 0) return 0;
    const sd = st.load.slowdown(st.workers);
    const lastStart = (st.backlogMs * Math.max(1, st.lag) * sd) / st.workers;
    let alt = Number.POSITIVE_INFINITY;
    for (const { cls: c } of this.index.eligible(req.needs)) {
      const nodes = c.nodes;
      const k = Math.min(nodes.length, 8);
      for (let s = 0; s < k; s++) {
        const n = nodes.length <= 8 ? nodes[s]! : nodes[this.rng.int(nodes.length)]!;
        if (n.id === node.id || !n.ready || !hasRoom(n)) continue;
        alt = Math.min(alt, this.estimate(n, req.kernelId));
      }
    }
    if (!(alt < lastStart * 0.6 && lastStart - alt > minGainMs)) return 0;
    return Math.max(1, Math.floor(queued / 2));
  }

  /** The kernel of a placed task (for rebalancing decisions). */
  kernelOf(key: string): string | undefined {
    return this.placed.get(key)?.kernelId;
  }

  lagOf(nodeId: string): number {
    return this.state.get(nodeId)?.lag ?? 1;
  }
}
