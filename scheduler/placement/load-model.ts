// Per-node load model fed by the agents' heartbeat samples (NodeLoad). It keeps three
// NodeLoadForecasters (scheduler/forecast/): the node's CPU utilisation (for predicted
// saturation), the *background* utilisation — CPU used on the node's cores by anything other
// than our kernels — and the agent's queue length (queued + running tasks).
// Placement reads only cached numbers (`background`, `slowdown`), refreshed once per sample,
// so scoring a node costs a few arithmetic operations however expensive the forecaster is.
import { NodeLoadForecaster, type AccuracyEntry, type NodeLoadForecasterOptions } from "../forecast/index.js";

/** A node's load as placement's model sees it (on the scheduler's clock); the wire's sample is common/kafka-wire.ts LoadSample. */
export interface NodeLoadObservation {
  atMs: number;
  /** 0..1 of the node's cores (the agent's CPU affinity, or the whole host). */
  cpuUtilization: number;
  /** 0..1 of the same cores used by the agent's own kernels; negative or 0 when unknown. */
  agentCpuUtilization: number;
  runningTasks: number;
  queuedTasks: number;
}

export interface LoadModelOptions {
  /** Heartbeat interval = forecaster step (ms). */
  stepMs: number;
  /** Worker threads of the node (its usable cores). */
  workers: number;
  /** Use the forecast (true) or the last sample (false: "ours without forecast"). */
  useForecast: boolean;
  /** The agent runs niced: the host's own load comes first (slowdownFactor). Default false; per node, see NodeLoadModel.yields. */
  yields?: boolean;
  /**
   * Which nodes the forecast term applies to (with useForecast): "all", or only those whose
   * agent yields ("yielding"): there the slowdown is far from linear in the load (1× while the
   * host leaves a core free, ≈ 10× inside its batch), which is where knowing the coming load
   * pays (docs/placement.md, issue #14); elsewhere the last sample stands, as without the forecast.
   * The forecasters are fed either way. Default "yielding": chosen on the bench's training seeds
   * (bench/results/placement.md), where the term with fair sharing gained little and cost up to
   * 3 % on one scenario, and gained on every niced one.
   */
  forecastOn?: "all" | "yielding";
  /** Steps ahead at which the background path is sampled, ascending (default PATH_STEPS). */
  pathSteps?: readonly number[];
  /** Horizon (ms) of the background forecast that placement uses (default 3 steps). */
  placementHorizonMs?: number;
  /**
   * Inputs given to the utilisation forecaster with each sample, for its ARX member (default
   * UTILIZATION_INPUTS; null: none). Chosen on a pinned live recording (one agent per core, the
   * shape of one agent per host) and held on a second (bench/forecast/live-exog-pinned-whole.json);
   * on whole-host series (agents without affinity) it hardly moves the ratio (bench/results/forecast.md).
   */
  utilizationInputs?: UtilizationInputs | null;
  /** Forecaster options; the defaults keep a 4-minute history at 1 s steps (cheap enough per node). */
  forecaster?: Omit<NodeLoadForecasterOptions, "stepMs">;
}

/** Defaults that detect short periods (up to half the history) at a cost of well under 1 ms per sample. */
export const DEFAULT_LOAD_FORECASTER: Omit<NodeLoadForecasterOptions, "stepMs"> = {
  model: { historySteps: 240, refitEverySteps: 60, minFitSteps: 12 },
};

/**
 * The utilisation forecaster's settings (the one distx_forecast_error_ratio scores): no season and
 * a 30-step selection memory, chosen by bench/forecast/live-tune.ts on the first 70 % of eight
 * recorded live heartbeat series (bench/forecast/live-chosen.json: train 0.723 against 0.744 with
 * the defaults above; last 30 % 0.760 against 0.791) and checked on a fresh run; chosen again with
 * the naive-gate candidates and eleven recordings (0.796 against 0.819; the gate is off). Background and
 * queue keep the defaults: placement's periodic background load needs the season search, and no
 * recording covers it.
 */
export const UTILIZATION_FORECASTER: Omit<NodeLoadForecasterOptions, "stepMs"> = {
  // arxLags 1: the ARX member fed UTILIZATION_INPUTS, chosen on a pinned recording (live-exog.ts
  // --validate: seed 71 whole 0.941 against 0.980 without inputs; held-out seed 72 0.978 against 1.039).
  model: { ...DEFAULT_LOAD_FORECASTER.model, seasonality: "none", selectionHalfLifeSteps: 30, arxLags: 1 },
};

/**
 * Inputs for the utilisation forecaster's ARX member (scheduler/forecast/arx-member.ts): what the
 * scheduler knows that last-value does not. A queue means the node stays busy; nothing running or
 * queued with the agent's own share high means that share is about to vanish. Fed by default
 * (LoadModelOptions.utilizationInputs): it pays where a node's series is its own cores (pinned
 * recordings), and is within ±0.01 on bursty whole-host ones.
 */
export type UtilizationInputs = (s: NodeLoadObservation) => number[];
export const UTILIZATION_INPUTS: UtilizationInputs = (s) => {
  const own = Math.max(0, s.agentCpuUtilization);
  const idle = s.runningTasks + s.queuedTasks === 0 ? 1 : 0;
  return [s.runningTasks, s.queuedTasks, own, idle * own];
};

/** Steps ahead at which the background path is sampled (a task's finish is interpolated between). */
export const PATH_STEPS: readonly number[] = [1, 2, 4, 8, 16, 32, 64];

const clamp01 = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);

/**
 * Factor (≥ 1) by which kernels run slower when `ownThreads` of ours share `cores` with
 * `background` (0..1) load. Fair share (the agent at the same priority as the host's load):
 * every runnable thread gets an equal slice. `yields` (the agent runs niced, as desktop-grid
 * agents usually do): the host's load takes the cores it wants and ours share what is left;
 * a nice-19 thread still gets about 1/70 of a core against a busy normal one (CFS weights 15 vs 1024).
 */
export function slowdownFactor(cores: number, ownThreads: number, background: number, yields = false): number {
  const c = Math.max(1, cores);
  const k = Math.max(1, ownThreads);
  if (!yields) return Math.max(1, (k + clamp01(background) * c) / c);
  const left = Math.max(c - clamp01(background) * c, (NICE_SHARE * k * c) / (k + c));
  return Math.max(1, k / left);
}
/** Share of a core a nice-19 thread gets against a nice-0 one (CFS weights 15 / 1039). */
const NICE_SHARE = 15 / 1039;

/** Background utilisation from one sample: total minus our own share. */
export function backgroundOf(s: NodeLoadObservation, cores: number): number {
  if (s.agentCpuUtilization > 0 || s.runningTasks === 0) return clamp01(s.cpuUtilization - Math.max(0, s.agentCpuUtilization));
  // Old agents that do not report their own share: assume each running task keeps one core busy.
  return clamp01(s.cpuUtilization - Math.min(s.runningTasks, cores) / Math.max(1, cores));
}

export class NodeLoadModel {
  /** The node's agent yields to the host's load (niced sharing); the registration can change it. */
  yields: boolean;
  readonly util: NodeLoadForecaster;
  readonly bg: NodeLoadForecaster;
  readonly queue: NodeLoadForecaster;
  /** Background utilisation placement assumes over the next few steps (cached). */
  background = 0;
  /** The forecast of it, whether or not placement uses it for this node (the dashboard shows it). */
  backgroundForecast = 0;
  /** Latest raw values. */
  lastUtil = 0;
  lastBackground = 0;
  lastSample: NodeLoadObservation | undefined;
  private readonly horizonMs: number;
  /**
   * Mean forecast background over (now, this.steps[j] steps], cached per sample, so that
   * placement can ask for the load a task will meet over its whole expected run (backgroundOver).
   */
  private readonly pathMean: Float64Array;
  /** Point forecasts of the background at PATH_STEPS (cached per sample), for finishOver. */
  private readonly pathPoint: Float64Array;
  private readonly steps: readonly number[];
  private readonly inputs: UtilizationInputs | null;

  constructor(private readonly options: LoadModelOptions) {
    const fo = { ...DEFAULT_LOAD_FORECASTER, ...options.forecaster, stepMs: options.stepMs };
    this.util = new NodeLoadForecaster({ ...UTILIZATION_FORECASTER, ...options.forecaster, stepMs: options.stepMs });
    this.bg = new NodeLoadForecaster(fo);
    this.queue = new NodeLoadForecaster(fo);
    this.horizonMs = options.placementHorizonMs ?? 3 * options.stepMs;
    this.yields = options.yields ?? false;
    this.steps = options.pathSteps ?? PATH_STEPS;
    this.inputs = options.utilizationInputs === undefined ? UTILIZATION_INPUTS : options.utilizationInputs;
    this.pathMean = new Float64Array(this.steps.length);
    this.pathPoint = new Float64Array(this.steps.length);
  }

  /** Whether placement reads the forecast for this node (else the last sample), per LoadModelOptions.forecastOn. */
  get forecastTerm(): boolean {
    return this.options.useForecast && (this.options.forecastOn === "all" || this.yields);
  }

  get workers(): number {
    return this.options.workers;
  }

  observe(s: NodeLoadObservation): void {
    if (!Number.isFinite(s.atMs) || !Number.isFinite(s.cpuUtilization)) return;
    this.lastSample = s;
    this.lastUtil = clamp01(s.cpuUtilization);
    this.lastBackground = backgroundOf(s, this.options.workers);
    this.util.observe(s.atMs, this.lastUtil, this.inputs?.(s));
    if (!this.options.useForecast) {
      // "Without forecast": only utilisation is kept (for saturation); placement uses the sample.
      this.background = this.backgroundForecast = this.lastBackground;
      return;
    }
    this.bg.observe(s.atMs, this.lastBackground);
    this.queue.observe(s.atMs, s.queuedTasks + s.runningTasks);
    const f = this.bg.forecast(this.horizonMs).mean;
    // Before the first step completes the forecast is NaN: use the sample.
    this.backgroundForecast = Number.isFinite(f) ? clamp01(f) : this.lastBackground;
    this.background = this.forecastTerm ? this.backgroundForecast : this.lastBackground;
    // Trapezoid running mean along the forecast path, from the latest sample.
    let prevH = 0;
    let prevF = this.lastBackground;
    let area = 0;
    for (let j = 0; j < this.steps.length; j++) {
      const h = this.steps[j]!;
      const fj = this.bg.forecast(h * this.options.stepMs).mean;
      const v = Number.isFinite(fj) ? clamp01(fj) : prevF;
      area += ((v + prevF) / 2) * (h - prevH);
      this.pathMean[j] = area / h;
      this.pathPoint[j] = v;
      prevH = h;
      prevF = v;
    }
  }

  /**
   * Mean background forecast over the next `horizonMs` (the span a task placed now is expected
   * to occupy the node). Without the forecast, or before any sample, the latest sample's.
   */
  backgroundOver(horizonMs: number): number {
    if (!this.forecastTerm || this.bg.completedSteps === 0) return this.lastBackground;
    const h = horizonMs / this.options.stepMs;
    if (!(h > 0)) return this.lastBackground;
    if (h <= this.steps[0]!) return this.lastBackground + (this.pathMean[0]! - this.lastBackground) * h;
    for (let j = 1; j < this.steps.length; j++) {
      const hi = this.steps[j]!;
      if (h <= hi) {
        const lo = this.steps[j - 1]!;
        return this.pathMean[j - 1]! + ((this.pathMean[j]! - this.pathMean[j - 1]!) * (h - lo)) / (hi - lo);
      }
    }
    return this.pathMean[this.steps.length - 1]!;
  }

  /** Slowdown a new task would see, on average, over the next `horizonMs` (forecast background). */
  slowdownOver(ownThreads: number, horizonMs: number): number {
    return slowdownFactor(this.options.workers, ownThreads, this.backgroundOver(horizonMs), this.yields);
  }

  /**
   * Wall time (ms) until a task of `runMs` unloaded work finishes when it starts after
   * `waitMs` of unloaded work per worker ahead of it, walking the forecast background path: the
   * queue drains with every worker busy, then the task runs with `ownThreads` of ours busy, each
   * stretch at the slowdown of the background forecast for it. Unlike the mean background over
   * the span, this sees that a task caught by a batch for half its run loses that half's rate,
   * which matters when the slowdown is not linear in the load (an agent that yields). Without
   * the forecast the latest sample holds throughout: (wait + run) × slowdown, as before.
   */
  finishOver(ownThreads: number, waitMs: number, runMs: number): number {
    const w = this.options.workers;
    const y = this.yields;
    if (!this.forecastTerm || this.bg.completedSteps === 0) {
      return waitMs * slowdownFactor(w, w, this.lastBackground, y) + runMs * slowdownFactor(w, ownThreads, this.lastBackground, y);
    }
    const step = this.options.stepMs;
    let t = 0;
    let prevBg = this.lastBackground;
    const left = [waitMs, runMs];
    let phase = waitMs > 0 ? 0 : 1;
    for (let j = 0; j <= this.steps.length; j++) {
      // Segment (t, end]: the background's forecast at its middle (held after the last point).
      const end = j < this.steps.length ? this.steps[j]! * step : Number.POSITIVE_INFINITY;
      const bg = j < this.steps.length ? (prevBg + this.pathPoint[j]!) / 2 : prevBg;
      for (;;) {
        const sd = slowdownFactor(w, phase === 0 ? w : ownThreads, bg, y);
        const need = left[phase]! * sd;
        if (t + need <= end) {
          t += need;
          left[phase] = 0;
          if (phase === 1) return t;
          phase = 1;
          continue;
        }
        left[phase] = left[phase]! - (end - t) / sd;
        t = end;
        break;
      }
      if (j < this.steps.length) prevBg = this.pathPoint[j]!;
    }
    return t;
  }

  /** Slowdown a new task would see with `ownThreads` of our tasks busy on the node. */
  slowdown(ownThreads: number): number {
    return slowdownFactor(this.options.workers, ownThreads, this.background, this.yields);
  }

  /** Slowdown measured by the latest sample (used to normalise observed run times). */
  currentSlowdown(ownThreads: number): number {
    return slowdownFactor(this.options.workers, ownThreads, this.lastBackground, this.yields);
  }

  accuracy(): { utilization: AccuracyEntry[]; background: AccuracyEntry[]; queue: AccuracyEntry[] } {
    return { utilization: this.util.accuracy(), background: this.bg.accuracy(), queue: this.queue.accuracy() };
  }
}
