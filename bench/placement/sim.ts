// Discrete-event simulator of placement quality. Nodes, background load and arrivals are
// simulated; the placement decisions are made by the scheduler's own strategy classes
// (scheduler/placement/strategy.ts) or the baselines in policies.ts, through the same
// PlacementStrategy interface SchedulerCore uses, fed the same kind of heartbeat samples.
import type { ResourceNeeds } from "../../scheduler/model.js";
import type { PlacementNode } from "../../scheduler/placement/index.js";
import { slowdownFactor } from "../../scheduler/placement/load-model.js";
import { ForecastPlacement, Rng, type PlacementStrategy } from "../../scheduler/placement/strategy.js";

export interface SimNode extends PlacementNode {
  workers: number;
  /** Background utilisation (0..1) at time t (ms). */
  bg: (tMs: number) => number;
  /** The agent runs niced: the background takes the cores it wants first (slowdownFactor). */
  yields?: boolean;
}

export interface SimJob {
  id: string;
  arriveMs: number;
  kernel: string;
  gpu: boolean;
  /** Work per task, in ms at speed 1. */
  work: number[];
}

export interface SimOptions {
  stepMs: number;
  /** Enable take-back rebalancing (only for ForecastPlacement). */
  rebalance?: boolean;
  /**
   * Heartbeats (and background load) run this long before the first job arrives (default 0),
   * so that load models have history, as they do for nodes of a running cluster. Job times,
   * JCT and makespan are counted from the end of the warm-up.
   */
  warmupMs?: number;
}

export interface SimResult {
  policy: string;
  jobs: number;
  tasks: number;
  meanJctMs: number;
  p95JctMs: number;
  makespanMs: number;
  utilisation: number;
  takenBack: number;
  wallMs: number;
}

interface SimTask {
  job: SimJobState;
  index: number;
  key: string;
}
interface SimJobState {
  job: SimJob;
  needs: ResourceNeeds;
  pending: number[];
  remaining: number;
}
interface NodeSim {
  node: SimNode;
  queue: SimTask[];
  running: number;
}

class Heap<T> {
  private a: { t: number; seq: number; v: T }[] = [];
  private seq = 0;
  get size() {
    return this.a.length;
  }
  push(t: number, v: T) {
    const a = this.a;
    a.push({ t, seq: this.seq++, v });
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]!.t < a[i]!.t || (a[p]!.t === a[i]!.t && a[p]!.seq < a[i]!.seq)) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): { t: number; v: T } | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        const less = (x: number, y: number) => a[x]!.t < a[y]!.t || (a[x]!.t === a[y]!.t && a[x]!.seq < a[y]!.seq);
        if (l < a.length && less(l, m)) m = l;
        if (r < a.length && less(r, m)) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}

/** Integration step (ms) of a task's progress against the node's changing background load. */
const PROGRESS_DT_MS = 500;

/**
 * Wall time of `workMs` of unloaded work started at `startMs`: progress runs at 1/slowdown,
 * the slowdown following the node's background as it changes during the run (a task started
 * just before a batch begins is slowed by it). Our own running count is taken at the start.
 */
export function runTime(node: SimNode, running: number, workMs: number, startMs: number): number {
  let t = startMs;
  let left = workMs;
  for (;;) {
    const sd = slowdownFactor(node.workers, running, node.bg(t), node.yields);
    if (left * sd <= PROGRESS_DT_MS) return t + left * sd - startMs;
    left -= PROGRESS_DT_MS / sd;
    t += PROGRESS_DT_MS;
  }
}

type Ev = { kind: "arrive"; job: SimJob } | { kind: "done"; ns: NodeSim; task: SimTask; dur: number } | { kind: "beat" };

export function simulate(policy: PlacementStrategy<SimNode>, nodes: SimNode[], jobs: SimJob[], options: SimOptions): SimResult {
  const wall = performance.now();
  const heap = new Heap<Ev>();
  const sims = new Map<string, NodeSim>();
  for (const n of nodes) {
    n.assigned = 0;
    sims.set(n.id, { node: n, queue: [], running: 0 });
    policy.addNode(n, n.workers);
  }
  const warmup = options.warmupMs ?? 0;
  for (const j of jobs) heap.push(j.arriveMs + warmup, { kind: "arrive", job: j });
  heap.push(0, { kind: "beat" });
  const central: SimJobState[] = [];
  const jct: number[] = [];
  let busy = 0;
  let makespan = 0;
  let tasks = 0;
  let finished = 0;
  let takenBack = 0;
  let now = 0;
  const totalWorkers = nodes.reduce((s, n) => s + n.workers, 0);

  const tryStart = (ns: NodeSim) => {
    while (ns.running < ns.node.workers && ns.queue.length > 0) {
      const task = ns.queue.shift()!;
      ns.running++;
      const dur = runTime(ns.node, ns.running, task.job.job.work[task.index]! / ns.node.speed, now);
      heap.push(now + dur, { kind: "done", ns, task, dur });
    }
  };

  const dispatch = () => {
    for (let j = 0; j < central.length; j++) {
      const js = central[j]!;
      if (js.pending.length === 0) continue;
      const idx = js.pending.splice(0, js.pending.length);
      const placed = policy.placeBatch({ kernelId: js.job.kernel, needs: js.needs }, idx.map((i) => `${js.job.id}/${i}`));
      for (let k = 0; k < placed.length; k++) {
        const ns = sims.get(placed[k]!.id)!;
        ns.queue.push({ job: js, index: idx[k]!, key: `${js.job.id}/${idx[k]}` });
        tryStart(ns);
      }
      js.pending = idx.slice(placed.length);
    }
    // Drop jobs with nothing left to place (keeps the scan short).
    let w = 0;
    for (const js of central) if (js.pending.length > 0) central[w++] = js;
    central.length = w;
  };

  const rebalancer = options.rebalance && policy instanceof ForecastPlacement ? policy : undefined;
  const lastTake = new Map<string, number>();
  let pendingJobs = jobs.length;

  while (heap.size > 0) {
    const ev = heap.pop()!;
    now = ev.t;
    const e = ev.v;
    if (e.kind === "arrive") {
      const j = e.job;
      tasks += j.work.length;
      central.push({
        job: j,
        needs: { cores: 0, memoryBytes: 0, gpu: j.gpu, nodeSelector: {}, kind: "KERNEL_KIND_WASM" },
        pending: j.work.map((_, i) => i),
        remaining: j.work.length,
      });
      dispatch();
    } else if (e.kind === "done") {
      const { ns, task, dur } = e;
      ns.running--;
      ns.node.assigned--;
      busy += dur;
      policy.observeRun(task.key, task.job.job.kernel, ns.node.id, dur);
      policy.released(task.key);
      if (--task.job.remaining === 0) {
        jct.push(now - warmup - task.job.job.arriveMs);
        finished++;
        pendingJobs--;
        makespan = now - warmup;
      }
      tryStart(ns);
      dispatch();
    } else {
      for (const ns of sims.values()) {
        const n = ns.node;
        const bg = n.bg(now);
        // Each of our running threads gets 1/slowdown of a core.
        const share = ns.running > 0 ? 1 / slowdownFactor(n.workers, ns.running, bg, n.yields) : 1;
        policy.observeLoad(n.id, {
          atMs: now,
          cpuUtilization: Math.min(1, (ns.running * share + bg * n.workers) / n.workers),
          agentCpuUtilization: (ns.running * share) / n.workers,
          runningTasks: ns.running,
          queuedTasks: ns.queue.length,
        });
        if (rebalancer && ns.queue.length > 0 && now - (lastTake.get(n.id) ?? -Infinity) >= 2 * options.stepMs) {
          const last = ns.queue[ns.queue.length - 1]!;
          const count = Math.min(ns.queue.length, rebalancer.rebalanceCount(n, { kernelId: last.job.job.kernel, needs: last.job.needs }, options.stepMs));
          if (count > 0) {
            lastTake.set(n.id, now);
            const moved = ns.queue.splice(ns.queue.length - count, count);
            for (const t of moved) {
              n.assigned--;
              policy.released(t.key);
              t.job.pending.unshift(t.index);
              if (!central.includes(t.job)) central.unshift(t.job);
            }
            takenBack += moved.length;
          }
        }
      }
      if (rebalancer) dispatch();
      if (pendingJobs > 0) heap.push(now + options.stepMs, { kind: "beat" });
    }
  }
  jct.sort((a, b) => a - b);
  const mean = jct.reduce((s, x) => s + x, 0) / Math.max(1, jct.length);
  const p95 = jct[Math.min(jct.length - 1, Math.floor(0.95 * jct.length))] ?? 0;
  if (finished !== jobs.length) throw new Error(`${policy.name}: only ${finished} of ${jobs.length} jobs finished`);
  return {
    policy: policy.name,
    jobs: finished,
    tasks,
    meanJctMs: mean,
    p95JctMs: p95,
    makespanMs: makespan,
    utilisation: busy / (totalWorkers * makespan),
    takenBack,
    wallMs: performance.now() - wall,
  };
}

// ───────────────────────────── scenario ─────────────────────────────

export interface ScenarioOptions {
  seed: number;
  durationMs: number;
  /** Background traces (values 0..1 after normalisation), one per node cyclically. */
  traces: number[][];
  /** Sim ms per trace step (traces are 5-minute series, replayed faster). */
  traceStepMs: number;
  /** Mean jobs per second outside bursts, and burst shape. */
  baseRate: number;
  burstEveryMs: number;
  burstJobs: [number, number];
  burstSpreadMs: number;
  /** Multiplies every kernel's work (default 1): long tasks for the background-load scenarios. */
  workScale?: number;
}

interface NodeSpec {
  count: number;
  speed: number;
  workers: number;
  gpu: number;
}

/** Heterogeneous: speeds 0.5–4, 4–16 workers, GPUs on the fastest class. */
export const HETEROGENEOUS: NodeSpec[] = [
  { count: 8, speed: 0.5, workers: 4, gpu: 0 },
  { count: 8, speed: 1, workers: 4, gpu: 0 },
  { count: 8, speed: 1, workers: 8, gpu: 0 },
  { count: 4, speed: 2, workers: 8, gpu: 0 },
  { count: 4, speed: 4, workers: 16, gpu: 1 },
];

export function makeNodes(specs: NodeSpec[], o: ScenarioOptions): SimNode[] {
  const rng = new Rng(o.seed * 7919 + 1);
  const out: SimNode[] = [];
  let i = 0;
  for (const s of specs) {
    for (let c = 0; c < s.count; c++, i++) {
      const trace = o.traces[i % o.traces.length]!;
      const offset = rng.int(trace.length);
      const amp = 0.3 + 0.6 * rng.next();
      const step = o.traceStepMs;
      out.push({
        id: `n${i}`,
        ready: true,
        logicalCores: s.workers,
        memoryBytes: s.workers * 2 * 2 ** 30,
        gpuCount: s.gpu,
        kernelKinds: new Set(["KERNEL_KIND_WASM"]),
        labels: {},
        capacity: s.workers * 3,
        assigned: 0,
        speed: s.speed,
        workers: s.workers,
        bg: (t) => {
          const x = t / step + offset;
          const k = Math.floor(x);
          const a = trace[k % trace.length]!;
          const b = trace[(k + 1) % trace.length]!;
          return amp * (a + (b - a) * (x - k));
        },
      });
    }
  }
  return out;
}

const KERNELS = [
  { id: "small", work: 150 },
  { id: "medium", work: 600 },
  { id: "large", work: 2400 },
];

export function makeJobs(o: ScenarioOptions): SimJob[] {
  const rng = new Rng(o.seed * 104729 + 3);
  const exp = (mean: number) => -Math.log(1 - rng.next()) * mean;
  const normal = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  const times: number[] = [];
  for (let t = exp(1000 / o.baseRate); t < o.durationMs; t += exp(1000 / o.baseRate)) times.push(t);
  for (let t = exp(o.burstEveryMs); t < o.durationMs; t += exp(o.burstEveryMs)) {
    const n = o.burstJobs[0] + rng.int(o.burstJobs[1] - o.burstJobs[0] + 1);
    for (let k = 0; k < n; k++) times.push(t + rng.next() * o.burstSpreadMs);
  }
  times.sort((a, b) => a - b);
  return times.map((t, i) => {
    const kernel = KERNELS[rng.int(KERNELS.length)]!;
    const tasks = Math.min(64, 1 + Math.floor(exp(8)));
    return {
      id: `j${i}`,
      arriveMs: t,
      kernel: kernel.id,
      gpu: rng.next() < 0.1,
      work: Array.from({ length: tasks }, () => kernel.work * (o.workScale ?? 1) * Math.exp(0.25 * normal())),
    };
  });
}
