// Sharing the machine with its owner (issue #15, item 5): whether the agent backs off for its
// host's own load, and when it gives its unstarted tasks back. Pure: fed one sample per heartbeat.
//
// The host's own load is the CPU use of the agent's cores (its affinity; load-sampler.ts) minus
// this agent process's own use (process.cpuUsage: the main thread and every kernel worker thread,
// which all live in this process). What is left is everything else on those cores: the owner's
// programs, other daemons, and also our GPU executor processes (another process each; on a
// machine where gpu.js runs in CPU mode, set maxHostLoad with them in mind).
//
// Backing off starts after BACK_OFF_AFTER samples in a row over maxHostLoad (one busy second is
// not a trend) and ends after RESUME_AFTER samples in a row below maxHostLoad − HYSTERESIS, so a
// load that hovers at the threshold does not make the node flap. While it backs off, the agent
// asks for its unstarted tasks to be taken back once the load is over giveBackHostLoad, or once it
// has backed off for hostLoadGraceMs: a short spike costs nothing, a long one frees the work.

export const BACK_OFF_AFTER = 2;
export const RESUME_AFTER = 3;
export const HYSTERESIS = 0.1;

export interface HostShareOptions {
  /** Unset: never back off. */
  maxHostLoad?: number;
  giveBackHostLoad?: number;
  hostLoadGraceMs: number;
}

export interface HostShareVerdict {
  /** "" when not backing off; otherwise why, in words (shown in `distx nodes` and the dashboard). */
  backingOff: string;
  giveBack: boolean;
  /** The host's own load of this sample, 0..1. */
  hostLoad: number;
}

const clamp01 = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);

export const hostLoadOf = (s: { cpuUtilization: number; agentCpuUtilization: number }): number => clamp01(s.cpuUtilization - s.agentCpuUtilization);

export class HostShare {
  private over = 0;
  private under = 0;
  private since: number | undefined;

  constructor(private readonly options: HostShareOptions) {}

  get backingOff(): boolean {
    return this.since !== undefined;
  }

  observe(hostLoad: number, nowMs: number): HostShareVerdict {
    const max = this.options.maxHostLoad;
    if (max === undefined) return { backingOff: "", giveBack: false, hostLoad };
    if (hostLoad > max) {
      this.over++;
      this.under = 0;
    } else {
      this.over = 0;
      this.under = hostLoad < max - HYSTERESIS ? this.under + 1 : 0;
    }
    if (this.since === undefined && this.over >= BACK_OFF_AFTER) this.since = nowMs;
    else if (this.since !== undefined && this.under >= RESUME_AFTER) this.since = undefined;
    if (this.since === undefined) return { backingOff: "", giveBack: false, hostLoad };
    const give = this.options.giveBackHostLoad;
    const giveBack = (give !== undefined && hostLoad > give) || nowMs - this.since >= this.options.hostLoadGraceMs;
    const pct = (x: number) => `${Math.round(x * 100)}%`;
    return { backingOff: `host load ${pct(hostLoad)} over max ${pct(max)}`, giveBack, hostLoad };
  }
}
