// Glue between the registry's event stream and the placement strategy, owned by SchedulerCore.
// It reads nodes and decides; it writes none of their fields (the registry owns them):
//   * keeps the strategy's node index and load models current (ready / load / down / capacity);
//   * raises predicted-saturation events for nodes and for the whole cluster (two samples in a
//     row must predict it, and at most one is raised per cooldown), and withdraws each on the
//     first step its forecast no longer reaches the threshold, so every prediction ends;
//   * dynamic load balancing: once per heartbeat step, a node whose queue of not-yet-started
//     tasks is predicted to run much later than another node could finish them gives some back.
import type { SchedulerConfig } from "../../common/config.js";
import type { NodeLoad } from "../../common/types.js";
import { NodeLoadForecaster, type AccuracyEntry } from "../forecast/index.js";
import { TrendDetector, trendOptionsForStep } from "../forecast/trend-detector.js";
import type { NodeEntry, NodeRegistry } from "../registry.js";
import type { PlacementMetrics } from "./feasibility.js";
import { DEFAULT_LOAD_FORECASTER, type NodeLoadObservation } from "./load-model.js";
import { recordLoad } from "./load-recorder.js";
import { CapacityPlacement, ForecastPlacement, type PlacementRequest, type PlanningStrategy } from "./strategy.js";

export interface PredictedSaturation {
  scope: "node" | "cluster";
  nodeId?: string;
  /** Predicted time until the threshold is crossed (ms). */
  etaMs: number;
  /** When the threshold is predicted to be crossed (scheduler clock, ms): atMs + etaMs. */
  crossingAtMs: number;
  horizonMs: number;
  /** Forecast utilisation at the end of the horizon, clamped to [0, 1] (the model's raw value may leave it). */
  forecast: number;
  threshold: number;
  /** When the prediction was made (scheduler clock, ms). */
  atMs: number;
}

/** A raised prediction no longer holds: the forecast stays below the threshold over the horizon. */
export interface SaturationWithdrawn {
  scope: "node" | "cluster";
  nodeId?: string;
  /** When it was withdrawn (scheduler clock, ms). */
  atMs: number;
}

export interface ForecastAccuracyEntry {
  nodeId: string; // "cluster" for the cluster-wide series
  metric: "utilization" | "background" | "queue";
  horizonMs: number;
  count: number;
  modelMae: number;
  naiveMae: number;
  /** model MAE / last-value MAE: below 1 beats the naive forecast. */
  ratio: number;
}

export interface PlacementHooks {
  saturation(event: PredictedSaturation): void;
  /** Called once for every raised prediction that stops holding (not for a node that went down). */
  saturationWithdrawn(event: SaturationWithdrawn): void;
  /** Tasks placed on the node and not started, oldest first, with what they need. */
  queuedOn(node: NodeEntry): { key: string; req: PlacementRequest }[];
  /** Take these tasks back from the node (cancel there, place again elsewhere). */
  takeBack(node: NodeEntry, keys: string[], reason: string): void;
}

type PlacementConfig = Pick<
  SchedulerConfig,
  "placement" | "heartbeatIntervalMs" | "saturationThreshold" | "saturationHorizonMs" | "saturationBound" | "saturationCooldownMs" | "rebalance"
>;

interface AlertState {
  /** The predicted crossing (scheduler clock, ms) while a raised prediction stands. */
  crossingAtMs: number | undefined;
  /** When the last prediction was raised (the cooldown counts from it). */
  lastAt: number;
  /** Consecutive samples predicting a crossing: one noisy sample is not enough. */
  streak: number;
}

/** Steps a forecaster must have seen before it may predict saturation: start-up samples (calibration) are noise, and the headroom needs residuals to be calibrated. */
const MIN_STEPS_BEFORE_ALERTS = 30;
/** The alert-state key of the cluster-wide series (node ids are UUIDs, so it cannot collide). */
const CLUSTER = "\0cluster";

export class PlacementController {
  readonly strategy: PlanningStrategy<NodeEntry>;
  private readonly cluster: NodeLoadForecaster;
  private readonly alerts = new Map<string, AlertState>();
  /** Per-series trend detectors, used when saturationBound is "trend". */
  private readonly trends = new Map<string, TrendDetector>();
  private readonly lastTakeBack = new Map<string, number>();
  private lastTick = 0;
  readonly stats = { takenBack: 0, saturationEvents: 0 };

  constructor(
    private readonly config: PlacementConfig,
    private readonly registry: NodeRegistry,
    private readonly hooks: PlacementHooks,
    /** Clock (tests drive it; the scheduler uses wall time). */
    private readonly now: () => number = Date.now,
  ) {
    const stepMs = config.heartbeatIntervalMs;
    // finish-time: the forecast strategy's score with the last load sample (useForecast false).
    this.strategy =
      config.placement === "capacity" ? new CapacityPlacement<NodeEntry>() : new ForecastPlacement<NodeEntry>({ stepMs, useForecast: config.placement === "forecast" });
    this.cluster = new NodeLoadForecaster({ ...DEFAULT_LOAD_FORECASTER, stepMs });
    registry.on("ready", (node: NodeEntry) => this.strategy.addNode(node, Math.max(1, node.profile.workers)));
    registry.on("down", (node, _reason, released) => {
      for (const key of released) this.strategy.released(key);
      this.strategy.removeNode(node.id);
      this.alerts.delete(node.id);
      this.trends.delete(node.id);
      this.lastTakeBack.delete(node.id);
    });
    registry.on("task_released", (_node, key) => this.strategy.released(key));
    registry.on("load", (node: NodeEntry, load: NodeLoad) => this.onLoad(node, load));
    const recordFile = process.env.DISTX_LOAD_RECORD_FILE;
    if (recordFile) recordLoad(registry, recordFile, now);
    registry.on("give_back", (node, reason) => this.giveBack(node, reason));
  }

  /**
   * Where each task (key) goes, in order (fewer when nodes are full); the caller counts them on
   * the nodes through the registry. Given `metrics`, the nodes dropped are recorded with why.
   */
  plan(req: PlacementRequest, keys: readonly string[], metrics?: PlacementMetrics): NodeEntry[] {
    return this.strategy.plan(req, keys, metrics);
  }

  observeRun(key: string, kernelId: string, nodeId: string, runMs: number): void {
    this.strategy.observeRun(key, kernelId, nodeId, runMs);
  }

  private onLoad(node: NodeEntry, load: NodeLoad): void {
    const now = this.now();
    const sample: NodeLoadObservation = {
      // The scheduler's clock: agents' clocks may differ, and samples are only compared per node.
      atMs: now,
      cpuUtilization: load.cpuUtilization,
      agentCpuUtilization: load.agentCpuUtilization ?? -1,
      runningTasks: load.runningTasks,
      queuedTasks: load.queuedTasks,
    };
    this.strategy.observeLoad(node.id, sample);
    const model = this.strategy.loadModel?.(node.id);
    if (model) this.checkSaturation("node", node.id, model.util, model.lastUtil, now);
    if (now - this.lastTick >= this.config.heartbeatIntervalMs) {
      this.lastTick = now;
      this.tick(now);
    }
  }

  private checkSaturation(scope: "node" | "cluster", id: string, f: NodeLoadForecaster, last: number, now: number): void {
    const threshold = this.config.saturationThreshold;
    const horizonMs = this.config.saturationHorizonMs;
    let st = this.alerts.get(id);
    if (!st) this.alerts.set(id, (st = { crossingAtMs: undefined, lastAt: Number.NEGATIVE_INFINITY, streak: 0 }));
    const bound = this.config.saturationBound;
    let eta: number | null;
    if (bound === "trend") {
      let d = this.trends.get(id);
      if (!d) this.trends.set(id, (d = new TrendDetector(trendOptionsForStep(this.config.heartbeatIntervalMs))));
      d.observe(now, last);
      eta = last >= threshold ? now : d.crossingAt(threshold, horizonMs);
    } else eta = f.saturationEta(threshold, horizonMs, bound);
    if (f.completedSteps < MIN_STEPS_BEFORE_ALERTS) return;
    const subject = scope === "node" ? { scope, nodeId: id } : { scope };
    if (st.crossingAtMs !== undefined) {
      // A raised prediction stands while the forecast still reaches the threshold (also once the
      // node is over it), and is withdrawn on the first sample where it does not.
      if (eta !== null) return;
      st.crossingAtMs = undefined;
      st.streak = 0;
      this.hooks.saturationWithdrawn({ ...subject, atMs: now });
      return;
    }
    // Predictive only: a node already over the threshold is saturated, not about to be.
    if (eta === null || last >= threshold) {
      st.streak = 0;
      return;
    }
    // The trend detector's t-test is its own noise guard; a second sample would cost a step of lead.
    if (++st.streak < (bound === "trend" ? 1 : 2)) return;
    // Within the cooldown the prediction waits (it is raised once the cooldown has passed, if it
    // still holds) rather than standing unannounced.
    if (now - st.lastAt < this.config.saturationCooldownMs) return;
    st.lastAt = now;
    const base = bound === "trend" ? now : (f.lastStepTimeMs ?? now);
    const etaMs = Math.max(0, Math.round(eta - base));
    st.crossingAtMs = now + etaMs;
    const forecast = bound === "trend" ? threshold : f.forecast(horizonMs)[bound];
    const event: PredictedSaturation = {
      ...subject,
      etaMs,
      crossingAtMs: now + etaMs,
      horizonMs,
      forecast: Math.min(1, Math.max(0, Number.isFinite(forecast) ? forecast : last)),
      threshold,
      atMs: now,
    };
    this.stats.saturationEvents++;
    this.hooks.saturation(event);
  }

  private tick(now: number): void {
    // Cluster utilisation: worker-weighted mean of the ready nodes' latest samples.
    let sum = 0;
    let weight = 0;
    const ready = this.registry.ready();
    for (const node of ready) {
      const m = this.strategy.loadModel?.(node.id);
      if (!m?.lastSample) continue;
      sum += m.lastUtil * m.workers;
      weight += m.workers;
    }
    if (weight > 0) {
      const u = sum / weight;
      this.cluster.observe(now, u);
      this.checkSaturation("cluster", CLUSTER, this.cluster, u, now);
    }
    if (this.config.rebalance) this.rebalance(ready, now);
  }

  /**
   * A node's agent backs off for its host's own load and asks for its unstarted tasks to go: take
   * them all back (cancelled there unstarted, queued again without using an attempt, then placed
   * on the nodes that are ready; the backing-off one is not). At most once per two heartbeats,
   * so the cancels in flight are answered before the same tasks are asked for again.
   */
  private giveBack(node: NodeEntry, reason: string): void {
    const now = this.now();
    if (now - (this.lastTakeBack.get(node.id) ?? 0) < 2 * this.config.heartbeatIntervalMs) return;
    const keys = this.hooks.queuedOn(node).map((q) => q.key);
    if (keys.length === 0) return;
    this.lastTakeBack.set(node.id, now);
    this.stats.takenBack += keys.length;
    this.hooks.takeBack(node, keys, `host load: ${reason}`);
  }

  private rebalance(ready: NodeEntry[], now: number): void {
    const strategy = this.strategy;
    if (!(strategy instanceof ForecastPlacement)) return;
    const minGainMs = this.config.heartbeatIntervalMs;
    for (const node of ready) {
      if (node.assigned <= Math.max(1, node.profile.workers)) continue;
      if (now - (this.lastTakeBack.get(node.id) ?? 0) < 2 * this.config.heartbeatIntervalMs) continue;
      const queued = this.hooks.queuedOn(node);
      const newest = queued[queued.length - 1];
      if (!newest) continue;
      const count = Math.min(queued.length, strategy.rebalanceCount(node, newest.req, minGainMs));
      if (count <= 0) continue;
      this.lastTakeBack.set(node.id, now);
      const keys = queued.slice(queued.length - count).map((q) => q.key);
      this.stats.takenBack += keys.length;
      this.hooks.takeBack(node, keys, `behind forecast (lag ${strategy.lagOf(node.id).toFixed(2)})`);
    }
  }

  /** The predicted crossing of a standing prediction (scheduler clock, ms), for a node or, without an id, the cluster. */
  predictedCrossing(nodeId?: string): number | undefined {
    return this.alerts.get(nodeId ?? CLUSTER)?.crossingAtMs;
  }

  /** The forecast utilisation of a node `horizonMs` ahead, once its model has data (for metrics and the dashboard). */
  forecastUtilization(nodeId: string, horizonMs: number): number | undefined {
    const model = this.strategy.loadModel?.(nodeId);
    if (!model || model.util.completedSteps === 0) return undefined;
    const mean = model.util.forecast(horizonMs).mean;
    return Number.isFinite(mean) ? Math.min(1, Math.max(0, mean)) : undefined;
  }

  /** 1 when placement models the node's agent as yielding to its host's load (niced), 0 when not; undefined without a load model (capacity). */
  yieldsToHost(nodeId: string): number | undefined {
    const model = this.strategy.loadModel?.(nodeId);
    return model ? (model.yields ? 1 : 0) : undefined;
  }

  /** The host's own load (background) placement assumes for the node over the next steps: its forecast, or the last sample without one. */
  hostLoadForecast(nodeId: string): number | undefined {
    const model = this.strategy.loadModel?.(nodeId);
    return model?.lastSample ? model.backgroundForecast : undefined;
  }

  accuracy(): ForecastAccuracyEntry[] {
    const out: ForecastAccuracyEntry[] = [];
    const push = (nodeId: string, metric: ForecastAccuracyEntry["metric"], list: AccuracyEntry[]) => {
      for (const a of list) out.push({ nodeId, metric, horizonMs: a.horizonMs, count: a.count, modelMae: a.modelMae, naiveMae: a.naiveMae, ratio: a.ratio });
    };
    for (const node of this.registry.all()) {
      const m = this.strategy.loadModel?.(node.id);
      if (!m) continue;
      const acc = m.accuracy();
      push(node.id, "utilization", acc.utilization);
      push(node.id, "background", acc.background);
      push(node.id, "queue", acc.queue);
    }
    push("cluster", "utilization", this.cluster.accuracy());
    return out;
  }
}
