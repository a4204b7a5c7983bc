// Expected run time of a kernel on a node, learnt from what the agents report.
//
// Observed run times are first divided by the slowdown the node was under when the task ran
// (background CPU load sharing its cores), so the history holds "unloaded" run times and the
// placement multiplies the forecast slowdown back in. Estimates, most specific first:
//   1. EWMA of this kernel on this very node (a node that is slower than its class shows here);
//   2. EWMA of this kernel on the node's class (same hardware);
//   3. the kernel's size in calibrated work units (EWMA of runMs × speed) divided by the node's speed;
//   4. an unknown kernel: DEFAULT_WORK / speed, so only calibration orders the nodes.

/** Work (ms × calibrated speed) assumed for a kernel never seen before. */
export const DEFAULT_WORK = 100;
/** Node-level history is trusted after this many runs. */
const MIN_NODE_RUNS = 2;

interface Ewma {
  value: number;
  count: number;
}

export interface RuntimeNode {
  id: string;
  /** Resource class key (see node-index.ts). */
  cls: string;
  /** Calibrated speed (1 when uncalibrated). */
  speed: number;
}

/**
 * Per kernel, then per node id or class key: nested maps rather than "kernel|node" keys, which
 * would build and hash a new ~80-character string on every observation and estimate.
 */
type ByKernel = Map<string, Map<string, Ewma>>;

function lookup(map: ByKernel, kernelId: string, key: string): Ewma | undefined {
  return map.get(kernelId)?.get(key);
}

export class RuntimeModel {
  private readonly byNode: ByKernel = new Map();
  private readonly byClass: ByKernel = new Map();
  private readonly work = new Map<string, Ewma>();

  constructor(private readonly alpha = 0.3) {}

  private updateIn(map: ByKernel, kernelId: string, key: string, x: number): void {
    let inner = map.get(kernelId);
    if (!inner) map.set(kernelId, (inner = new Map()));
    this.update(inner, key, x);
  }

  private update(map: Map<string, Ewma>, key: string, x: number): void {
    const e = map.get(key);
    if (!e) map.set(key, { value: x, count: 1 });
    else {
      // The first few runs get more weight than alpha so one early outlier fades fast.
      const a = Math.max(this.alpha, 1 / (e.count + 1));
      e.value += a * (x - e.value);
      e.count++;
    }
  }

  /** Records a finished run: `runMs` as measured, `slowdown` (≥ 1) the load factor when it ran. */
  observe(kernelId: string, node: RuntimeNode, runMs: number, slowdown = 1): void {
    if (!Number.isFinite(runMs) || runMs < 0) return;
    const unloaded = runMs / Math.max(1, slowdown);
    this.updateIn(this.byNode, kernelId, node.id, unloaded);
    this.updateIn(this.byClass, kernelId, node.cls, unloaded);
    this.update(this.work, kernelId, unloaded * Math.max(node.speed, 1e-9));
  }

  /** Expected unloaded run time (ms) of `kernelId` on `node`. */
  estimate(kernelId: string, node: RuntimeNode): number {
    const n = lookup(this.byNode, kernelId, node.id);
    if (n && n.count >= MIN_NODE_RUNS) return n.value;
    const c = lookup(this.byClass, kernelId, node.cls);
    if (c) return c.value;
    const w = this.work.get(kernelId);
    return (w ? w.value : DEFAULT_WORK) / Math.max(node.speed, 1e-9);
  }

  /** Runs observed for this kernel on this class (0 when none). */
  classRuns(kernelId: string, cls: string): number {
    return lookup(this.byClass, kernelId, cls)?.count ?? 0;
  }

  forgetNode(nodeId: string): void {
    for (const perNode of this.byNode.values()) perNode.delete(nodeId);
  }
}
