// The dashboard's alert list, bounded and grouped: one row per alert name + node (a flapping
// agent is one row with a count, not a page of rows), with how many times it fired, when it was
// last seen and whether it is firing now. Read from the bus's events (AlertEvent) only.
import type { AlertEvent } from "../alerts/bus.js";

export interface AlertGroup {
  name: string;
  /** The node it is about; "cluster" for the cluster-wide prediction; "" when none (e.g. a job's). */
  node: string;
  severity: string;
  /** Times it fired since the scheduler started (or since the group was first kept). */
  count: number;
  /** Alerts of the group firing now. */
  firing: number;
  firstSeenMs: number;
  lastSeenMs: number;
  lastSummary: string;
}

export interface AlertGroupsView {
  groups: AlertGroup[];
  /** Groups kept (the list shows the first `shown` of them: firing first, most severe, most recent). */
  total: number;
  firing: number;
}

export class AlertGroups {
  private readonly groups = new Map<string, AlertGroup & { ids: Set<string> }>();

  constructor(
    private readonly maxGroups = 200,
    private readonly shown = 50,
  ) {}

  add(a: AlertEvent): void {
    const node = a.labels.node ?? (a.labels.scope === "cluster" ? "cluster" : "");
    const key = `${a.name}\u0000${node}`;
    let g = this.groups.get(key);
    if (!g) {
      if (a.state !== "firing") return; // a resolution of something no longer kept
      g = { name: a.name, node, severity: a.severity, count: 0, firing: 0, firstSeenMs: a.firedAtMs, lastSeenMs: 0, lastSummary: "", ids: new Set() };
      this.groups.set(key, g);
    }
    if (a.state === "firing") {
      if (!g.ids.has(a.alertId)) g.count++;
      g.ids.add(a.alertId);
      g.severity = a.severity;
      g.lastSeenMs = Math.max(g.lastSeenMs, a.firedAtMs);
    } else {
      g.ids.delete(a.alertId);
      g.lastSeenMs = Math.max(g.lastSeenMs, a.resolvedAtMs);
    }
    g.firing = g.ids.size;
    g.lastSummary = a.summary.slice(0, 300);
    // After the update, so the new group is judged by what it now is.
    if (this.groups.size > this.maxGroups) this.evict();
  }

  /**
   * Past maxGroups one goes: a resolved one before a firing one, then the least severe, then the
   * one seen longest ago; so a storm of warnings cannot push a critical page off the list.
   */
  private evict(): void {
    while (this.groups.size > this.maxGroups) {
      let victim: string | undefined;
      let worst: AlertGroup | undefined;
      for (const [k, g] of this.groups) if (!worst || order(g, worst) > 0) (victim = k), (worst = g);
      this.groups.delete(victim!);
    }
  }

  view(): AlertGroupsView {
    const all = [...this.groups.values()].sort(order);
    return {
      groups: all.slice(0, this.shown).map(({ ids: _ids, ...g }) => g),
      total: all.length,
      firing: all.reduce((s, g) => s + g.firing, 0),
    };
  }
}

const SEVERITY: Record<string, number> = { critical: 2, warning: 1, info: 0 };

/** The list's order: firing first, then the most severe, then the most recently seen. */
function order(a: AlertGroup, b: AlertGroup): number {
  return Number(b.firing > 0) - Number(a.firing > 0) || (SEVERITY[b.severity] ?? 0) - (SEVERITY[a.severity] ?? 0) || b.lastSeenMs - a.lastSeenMs;
}
