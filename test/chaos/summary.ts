// The summary table of a chaos run (summary.md): faults by kind, jobs, tasks, violations by
// property with the first few examples, and the longest stall after a fault.
import type { CheckReport } from "./checker.js";
import { PROPERTIES } from "./checker.js";
import { FAULT_KINDS } from "./history.js";

export interface RunInfo {
  run: string;
  seed: number;
  minutes: number;
  startedAt: string;
  machine: string;
  agents: number;
  clients: number;
  heartbeatIntervalMs: number;
  agentTimeoutMs: number;
  leaseTtlMs: number;
  eventsMaxMessageBytes: number;
  wallMs: number;
}

export function renderSummary(info: RunInfo, r: CheckReport, examples = 3): string {
  const total = r.violations.length;
  const lines: string[] = [];
  lines.push(`# Chaos run ${info.run}`);
  lines.push("");
  lines.push(`seed ${info.seed}, ${info.minutes} min of faults, ${(info.wallMs / 60_000).toFixed(1)} min wall; started ${info.startedAt}; ${info.machine}`);
  lines.push(`cluster: 2 schedulers (lease ${info.leaseTtlMs} ms), ${info.agents} agents, Kafka (task-events max.message.bytes ${info.eventsMaxMessageBytes}), Redis; heartbeat ${info.heartbeatIntervalMs} ms, agent timeout ${info.agentTimeoutMs} ms; ${info.clients} clients`);
  lines.push("");
  lines.push("| | |");
  lines.push("| --- | --- |");
  const faults = Object.values(r.stats.faultsByKind).reduce((a, b) => a + (b ?? 0), 0);
  lines.push(`| faults injected | ${faults} |`);
  for (const k of FAULT_KINDS) if (r.stats.faultsByKind[k]) lines.push(`| &nbsp; ${k} | ${r.stats.faultsByKind[k]} |`);
  lines.push(`| submits (calls) | ${r.stats.submits} |`);
  lines.push(`| jobs acknowledged | ${r.stats.acknowledged} (${Object.entries(r.stats.jobsByState).map(([s, n]) => `${n} ${s.replace("JOB_STATE_", "")}`).join(", ") || "none read"}) |`);
  lines.push(`| tasks | ${r.stats.tasks} |`);
  lines.push(`| watches | ${r.stats.watches} |`);
  lines.push(`| **violations** | **${total}** |`);
  for (const p of PROPERTIES) {
    const skip = r.skipped.find((s) => s.property === p);
    lines.push(`| &nbsp; ${p} | ${skip ? `skipped: ${skip.reason}` : r.byProperty[p]} |`);
  }
  const lc = r.stats.longestCall;
  if (lc) lines.push(`| longest client call (invoke → answer, retries included) | ${(lc.ms / 1000).toFixed(1)} s: ${lc.client} ${lc.op} at t=${(lc.at / 1000).toFixed(1)} s, ${lc.outcome} |`);
  const ls = r.stats.longestStall;
  lines.push(`| longest stall after a fault | ${ls ? `${(ls.stallMs / 1000).toFixed(1)} s after ${ls.kind} ${ls.target} (fault ${ls.fault})${ls.unrecovered ? ", never recovered before the run ended" : ""}` : "none measured"} |`);
  // The goal excludes stalls while the broker or Redis is down, and stalls another fault began
  // inside (the next fault came before the cluster had recovered from this one: the stall is
  // both faults', measured above).
  const backend = (kind: string) => /redis|broker/.test(kind);
  const kinds = new Map(r.stalls.map((s) => [s.fault, s.kind]));
  const isolated = r.stalls.filter((s) => !backend(s.kind) && !s.overlappedBy.some((f) => backend(kinds.get(f) ?? "")));
  const longest = (list: typeof r.stalls) => list.reduce<(typeof r.stalls)[number] | undefined>((a, s) => (!a || s.stallMs > a.stallMs ? s : a), undefined);
  const lsp = longest(isolated);
  if (lsp) lines.push(`| longest stall, broker/Redis faults aside | ${(lsp.stallMs / 1000).toFixed(1)} s after ${lsp.kind} ${lsp.target} (fault ${lsp.fault}${lsp.overlappedBy.length ? `, with fault ${lsp.overlappedBy.join(", ")} before recovery` : ""}) |`);
  const alone = longest(isolated.filter((s) => s.overlappedBy.length === 0));
  if (alone) lines.push(`| longest stall after a fault alone (no other fault before recovery) | ${(alone.stallMs / 1000).toFixed(1)} s after ${alone.kind} ${alone.target} (fault ${alone.fault}; goal ≤ ${((info.agentTimeoutMs + 2000) / 1000).toFixed(1)} s) |`);
  lines.push("");
  if (total) {
    lines.push("## Violations (first examples per property)");
    lines.push("");
    for (const p of PROPERTIES) {
      const vs = r.violations.filter((v) => v.property === p);
      if (!vs.length) continue;
      lines.push(`### ${p} (${vs.length})`);
      // One example of each kind of message first (ids and numbers aside), then more of the same.
      const kinds = new Map<string, (typeof vs)[number]>();
      for (const v of vs) kinds.set(template(v.message), kinds.get(template(v.message)) ?? v);
      const shown = [...new Set([...kinds.values(), ...vs])].slice(0, Math.max(examples, Math.min(kinds.size, 6)));
      for (const v of shown) lines.push(`- ${v.t !== undefined ? `t=${(v.t / 1000).toFixed(1)} s: ` : ""}${v.message}`);
      lines.push("");
    }
  }
  if (r.notes.length) {
    lines.push("## Notes");
    lines.push("");
    for (const n of r.notes) lines.push(`- ${n}`);
    lines.push("");
  }
  const unrecovered = r.stalls.filter((s) => s.unrecovered);
  if (unrecovered.length) {
    lines.push(`## Faults after which no task completed before the run ended (${unrecovered.length})`);
    lines.push("");
    for (const s of unrecovered.slice(0, 5)) lines.push(`- fault ${s.fault} ${s.kind} ${s.target}, ended at t=${(s.endedAt / 1000).toFixed(1)} s`);
    lines.push("");
  }
  return lines.join("\n");
}

/** A violation message with its ids, times and counts blanked, to group findings by kind. */
function template(message: string): string {
  return message.replace(/job-[0-9a-f-]{36}/g, "job").replace(/node-[0-9a-f]+/g, "node").replace(/\([^)]*\)/g, "()").replace(/\d+/g, "N");
}
