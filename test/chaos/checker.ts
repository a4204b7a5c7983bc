// Checks a chaos history (history.ts) after the run, Jepsen-style: the harness only records what
// clients and the monitor saw; every judgement is made here, from the history alone, so it can
// be unit-tested on synthetic histories and re-run on a saved history.jsonl.
import type { FaultKind, FinalResult, HistoryEvent, JobSpec } from "./history.js";

export type Property =
  | "job-completes"
  | "exactly-one-result"
  | "output-correct"
  | "submit-idempotent"
  | "watch-outcomes"
  | "node-liveness"
  | "no-unexpected-exit";

export const PROPERTIES: Property[] = [
  "job-completes",
  "exactly-one-result",
  "output-correct",
  "submit-idempotent",
  "watch-outcomes",
  "node-liveness",
  "no-unexpected-exit",
];

export interface Violation {
  property: Property;
  message: string;
  t?: number;
  jobId?: string;
}

export interface Stall {
  /** The fault after whose end the stall was measured. */
  fault: number;
  kind: FaultKind;
  target: string;
  endedAt: number;
  /** ms from the fault's end to the next task completion (or to the end of the run). */
  stallMs: number;
  /** No task completed after this fault before the run ended, though work was pending. */
  unrecovered: boolean;
  /** Faults that began before the cluster recovered from this one: the stall is theirs too. */
  overlappedBy: number[];
}

export interface CheckOptions {
  /** Extra time beyond one heartbeat allowed for a node to come back (process wake-up, poll period). */
  livenessSlackMs?: number;
  /** How long a node must be seen DOWN past its due time to count (default agent timeout + one heartbeat). */
  downPersistMs?: number;
  /** A live agent missing from ListNodes this long after it and the schedulers are up is a violation. */
  absentAfterMs?: number;
}

export interface CheckReport {
  violations: Violation[];
  byProperty: Record<Property, number>;
  skipped: { property: Property; reason: string }[];
  /** Findings that are not violations of a property, but worth reading (e.g. duplicate runs without request ids). */
  notes: string[];
  stats: {
    submits: number;
    acknowledged: number;
    unacknowledgedThatRan: number;
    jobsByState: Record<string, number>;
    tasks: number;
    watches: number;
    faultsByKind: Partial<Record<FaultKind, number>>;
    longestStall?: Stall;
    /** The longest a workload call (submit, getJob, cancel, ...) waited for its answer, retries included: what a user felt. */
    longestCall?: { ms: number; op: string; client: string; call: number; at: number; outcome: string };
  };
  stalls: Stall[];
}

const TERMINAL_JOB = new Set(["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"]);
const TERMINAL_TASK = new Set(["TASK_STATE_SUCCEEDED", "TASK_STATE_FAILED", "TASK_STATE_CANCELLED"]);
/** Faults whose end makes every agent reachable again only once a scheduler has taken its sessions back. */
const CLUSTER_FAULTS = new Set<FaultKind>(["kill-scheduler", "pause-scheduler", "kill-redis", "pause-redis", "kill-broker", "pause-broker", "redis-oom", "redis-pause-writes"]);
/** Faults that are not a cluster outage: no stall is measured after them. */
const NO_STALL_FAULTS = new Set<FaultKind>(["client-disconnect"]);

export const jobNameFor = (logical: string) => `chaos/${logical}`;
export const logicalOfName = (name: string) => (name.startsWith("chaos/") ? name.slice("chaos/".length) : undefined);

export function check(history: HistoryEvent[], options: CheckOptions = {}): CheckReport {
  const violations: Violation[] = [];
  const add = (v: Violation) => violations.push(v);
  const skipped: CheckReport["skipped"] = [];
  const notes: string[] = [];
  const meta = history.find((e) => e.type === "meta");
  const end = history.find((e) => e.type === "end");
  const lastT = history.length ? history[history.length - 1]!.t : 0;

  // ── acknowledged jobs and their final reads ──
  const acked = new Map<string, { logical: string; spec?: JobSpec; t: number }>();
  const specOf = new Map<number, { spec?: JobSpec; logical?: string }>();
  let submits = 0;
  for (const e of history) {
    if (e.type === "invoke" && e.op === "submit") {
      submits++;
      specOf.set(e.call, { spec: e.spec, logical: e.logical });
    }
    if (e.type === "ok" && e.op === "submit" && e.jobId) {
      acked.set(e.jobId, { logical: e.logical ?? "", spec: specOf.get(e.call)?.spec, t: e.t });
    }
  }
  const finals = new Map<string, Extract<HistoryEvent, { type: "final" }>>();
  for (const e of history) if (e.type === "final") finals.set(e.jobId, e);

  // The last final state a client saw for each job (watch snapshot or GetJob), for jobs that cannot be read back.
  const seenFinal = new Map<string, { state: string; t: number }>();
  for (const e of history) {
    if (e.type === "watch-event" && e.kind === "snapshot" && TERMINAL_JOB.has(e.state)) seenFinal.set(e.jobId, { state: e.state, t: e.t });
    if (e.type === "ok" && e.op === "getJob" && e.jobId && e.state && TERMINAL_JOB.has(e.state)) seenFinal.set(e.jobId, { state: e.state, t: e.t });
  }
  const jobsByState: Record<string, number> = {};
  let tasks = 0;
  for (const [jobId, a] of acked) {
    const f = finals.get(jobId);
    if (!f) {
      add({ property: "job-completes", jobId, message: `job ${jobId} (${a.logical}) was acknowledged at t=${a.t} ms but never read back at the end` });
      continue;
    }
    tasks += f.taskCount;
    jobsByState[f.state] = (jobsByState[f.state] ?? 0) + 1;
    const spec = f.spec ?? a.spec;
    if (!f.state.startsWith("JOB_STATE_")) {
      const seen = seenFinal.get(jobId);
      const seenText = seen ? `; a client saw it ${short(seen.state)} at t=${seen.t} ms` : "";
      add({ property: "job-completes", jobId, t: f.t, message: `job ${jobId} (${a.logical}) could not be read back after the run healed: GetJob/GetResults ${f.state}${f.error ? ` (${f.error.slice(0, 160)})` : ""}${f.stored !== undefined ? `; the store holds ${f.stored} of ${f.taskCount} results` : ""}${seenText}` });
      // Seen finished by a client: its results must all be in the store even if the scheduler forgot the job.
      if (seen && seen.state !== "JOB_STATE_CANCELLED" && f.stored !== undefined && f.stored !== f.taskCount) {
        add({ property: "exactly-one-result", jobId, t: f.t, message: `job ${jobId} was seen ${short(seen.state)} at t=${seen.t} ms but the store holds ${f.stored} of ${f.taskCount} results` });
      }
      continue;
    }
    if (!TERMINAL_JOB.has(f.state)) {
      add({ property: "job-completes", jobId, t: f.t, message: `job ${jobId} (${a.logical}) is still ${f.state} after the run healed${f.error ? ` (${f.error})` : ""}; ${countDone(f.results)} of ${f.taskCount} results stored` });
      continue;
    }
    if (f.state === "JOB_STATE_FAILED" && !spec?.mayFail) {
      const first = f.results.find((r) => r.state === "TASK_STATE_FAILED");
      add({ property: "job-completes", jobId, t: f.t, message: `job ${jobId} (${a.logical}) FAILED, though nothing in it can fail: first failed task ${first?.index ?? "?"} ${first?.code ?? ""} ${first?.detail ?? ""}`.trim() });
    }
    if (f.state === "JOB_STATE_CANCELLED" && !spec?.cancels) {
      add({ property: "job-completes", jobId, t: f.t, message: `job ${jobId} (${a.logical}) ended CANCELLED but no client cancelled it` });
    }
    // Exactly one stored result per task.
    const seen = new Map<number, number>();
    for (const r of f.results) seen.set(r.index, (seen.get(r.index) ?? 0) + 1);
    const dups = [...seen].filter(([, n]) => n > 1).map(([i]) => i);
    if (dups.length) add({ property: "exactly-one-result", jobId, t: f.t, message: `job ${jobId}: task(s) ${dups.slice(0, 5).join(", ")} have more than one stored result` });
    if (f.state !== "JOB_STATE_CANCELLED") {
      const missing: number[] = [];
      for (let i = 0; i < f.taskCount; i++) if (!seen.has(i)) missing.push(i);
      if (missing.length) {
        add({ property: "exactly-one-result", jobId, t: f.t, message: `job ${jobId} is ${short(f.state)} but only ${f.taskCount - missing.length} of ${f.taskCount} results are stored (missing e.g. task ${missing.slice(0, 5).join(", ")})` });
      }
      if (f.stored !== undefined && f.stored !== f.taskCount) {
        add({ property: "exactly-one-result", jobId, t: f.t, message: `job ${jobId} is ${short(f.state)} with ${f.taskCount} tasks but the store holds ${f.stored} result records` });
      }
    }
    if (f.state === "JOB_STATE_SUCCEEDED") {
      const notOk = f.results.filter((r) => r.state !== "TASK_STATE_SUCCEEDED");
      if (notOk.length) add({ property: "job-completes", jobId, t: f.t, message: `job ${jobId} is SUCCEEDED but ${notOk.length} stored result(s) are not (task ${notOk[0]!.index}: ${notOk[0]!.state})` });
    }
    const wrong = f.results.filter((r) => r.state === "TASK_STATE_SUCCEEDED" && r.ok === false);
    if (wrong.length) add({ property: "output-correct", jobId, t: f.t, message: `job ${jobId}: ${wrong.length} output(s) differ from the reference (task ${wrong[0]!.index}: ${wrong[0]!.detail ?? ""})` });
  }

  // ── idempotent submit under one request id ──
  const list = [...history].reverse().find((e) => e.type === "jobs");
  const jobsByLogical = new Map<string, string[]>();
  if (list && list.type === "jobs") {
    for (const j of list.jobs) {
      const logical = logicalOfName(j.name);
      if (logical === undefined) continue;
      const l = jobsByLogical.get(logical) ?? [];
      l.push(j.jobId);
      jobsByLogical.set(logical, l);
    }
  }
  const ackedLogical = new Set([...acked.values()].map((a) => a.logical));
  let unacknowledgedThatRan = 0;
  for (const [logical] of jobsByLogical) if (!ackedLogical.has(logical)) unacknowledgedThatRan++;
  const runTwice = [...jobsByLogical].filter(([, ids]) => ids.length > 1);
  if (!meta?.requestIds) {
    skipped.push({ property: "submit-idempotent", reason: "the client API has no request ids (SubmitJobRequest.request_id)" });
    if (runTwice.length) {
      notes.push(`${runTwice.length} logical submission(s) ran as more than one job after the client retried a failed SubmitJob (no request id to dedupe on), e.g. ${runTwice[0]![0]}: ${runTwice[0]![1].join(", ")}`);
    }
  } else if (!list) {
    skipped.push({ property: "submit-idempotent", reason: "no final job listing in the history" });
  } else {
    for (const [logical, ids] of runTwice) {
      add({ property: "submit-idempotent", message: `request id ${logical} ran as ${ids.length} jobs: ${ids.join(", ")}${ackedLogical.has(logical) ? "" : " (never acknowledged)"}` });
    }
  }
  if (unacknowledgedThatRan) notes.push(`${unacknowledgedThatRan} submission(s) the client saw fail (never acknowledged) were accepted and ran anyway`);

  // ── watches ──
  const watches = new Map<number, { jobId: string; mode: string; events: HistoryEvent[]; end?: Extract<HistoryEvent, { type: "watch-end" }> }>();
  for (const e of history) {
    if (e.type === "watch-open") watches.set(e.watch, { jobId: e.jobId, mode: e.mode, events: [] });
    else if (e.type === "watch-event") watches.get(e.watch)?.events.push(e);
    else if (e.type === "watch-end") {
      const w = watches.get(e.watch);
      if (w) w.end = e;
    }
  }
  for (const [id, w] of watches) checkWatch(id, w, finals.get(w.jobId), add);

  // ── daemons that exited on their own ──
  for (const e of history) {
    if (e.type === "proc" && e.event === "exited" && !e.expected) {
      add({ property: "no-unexpected-exit", t: e.t, message: `${e.name} exited on its own at t=${e.t} ms (code ${e.code ?? "?"}${e.signal ? `, ${e.signal}` : ""}); nothing killed it` });
    }
  }

  // ── nodes come back ──
  if (!meta) skipped.push({ property: "node-liveness", reason: "no meta record (heartbeat settings unknown)" });
  else checkLiveness(history, meta, options, add);

  // ── stalls ──
  const stalls = measureStalls(history, end?.t ?? lastT);
  const longestStall = stalls.reduce<Stall | undefined>((a, s) => (!a || s.stallMs > a.stallMs ? s : a), undefined);

  // ── what the clients felt: a call's wait from invoke to answer, through the client's own retries ──
  const invoked = new Map<number, Extract<HistoryEvent, { type: "invoke" }>>();
  let longestCall: CheckReport["stats"]["longestCall"];
  for (const e of history) {
    if (e.type === "invoke") invoked.set(e.call, e);
    else if (e.type === "ok" || e.type === "fail") {
      const i = invoked.get(e.call);
      if (i && (!longestCall || e.t - i.t > longestCall.ms)) longestCall = { ms: e.t - i.t, op: i.op, client: i.client, call: i.call, at: i.t, outcome: e.type === "ok" ? "ok" : e.code };
    }
  }

  const faultsByKind: Partial<Record<FaultKind, number>> = {};
  for (const e of history) if (e.type === "fault-start") faultsByKind[e.kind] = (faultsByKind[e.kind] ?? 0) + 1;
  const byProperty = Object.fromEntries(PROPERTIES.map((p) => [p, 0])) as Record<Property, number>;
  for (const v of violations) byProperty[v.property]++;
  return {
    violations,
    byProperty,
    skipped,
    notes,
    stats: { submits, acknowledged: acked.size, unacknowledgedThatRan, jobsByState, tasks, watches: watches.size, faultsByKind, longestStall, longestCall },
    stalls,
  };
}

function countDone(results: FinalResult[]): number {
  return new Set(results.filter((r) => TERMINAL_TASK.has(r.state)).map((r) => r.index)).size;
}
const short = (state: string) => state.replace(/^(JOB|TASK)_STATE_/, "");

function checkWatch(
  id: number,
  w: { jobId: string; mode: string; events: HistoryEvent[]; end?: Extract<HistoryEvent, { type: "watch-end" }> },
  final: Extract<HistoryEvent, { type: "final" }> | undefined,
  add: (v: Violation) => void,
): void {
  const where = `watch ${id} (${w.mode}) of job ${w.jobId}`;
  const outcomes = new Map<number, string[]>();
  let first: Extract<HistoryEvent, { type: "watch-event"; kind: "snapshot" }> | undefined;
  let terminal: Extract<HistoryEvent, { type: "watch-event"; kind: "snapshot" }> | undefined;
  let reported = 0;
  const report = (message: string, t: number) => {
    // The first few per watch say enough; a watch that misses 60 outcomes is one finding.
    if (reported++ < 3) add({ property: "watch-outcomes", jobId: w.jobId, t, message: `${where}: ${message}` });
  };
  for (const e of w.events) {
    if (e.type !== "watch-event") continue;
    if (e.kind === "snapshot") {
      if (!first) first = e;
      if (terminal) report(`a snapshot (${short(e.state)}) came after the final snapshot`, e.t);
      if (TERMINAL_JOB.has(e.state)) terminal ??= e;
      continue;
    }
    if (!first) report(`task ${e.index} came before the first job snapshot`, e.t);
    if (terminal) report(`task ${e.index} ${short(e.state)} came after the final snapshot (${short(terminal.state)})`, e.t);
    const seen = outcomes.get(e.index);
    if (TERMINAL_TASK.has(e.state)) {
      if (seen?.length) report(`task ${e.index}'s outcome came twice (${seen.map(short).join(", ")}, then ${short(e.state)})`, e.t);
      outcomes.set(e.index, [...(seen ?? []), e.state]);
    } else if (seen?.length) {
      report(`task ${e.index} went back to ${short(e.state)} after its outcome ${short(seen[0]!)}`, e.t);
    }
    if (final && TERMINAL_TASK.has(e.state)) {
      const r = final.results.find((x) => x.index === e.index);
      if (r && r.state !== e.state) report(`task ${e.index} was reported ${short(e.state)} but its stored result is ${short(r.state)}`, e.t);
    }
  }
  if (!w.end) return; // still open when the run ended: the harness closes all watches, so this is a harness gap
  if (w.end.reason === "ended" && !terminal) {
    report(`the stream ended without a final job snapshot (${outcomes.size} outcomes seen)`, w.end.t);
    return;
  }
  if (!terminal || !first) return; // cut by an error, a disconnect or a timeout: only order is checked
  if (final?.state.startsWith("JOB_STATE_") && terminal.state !== final.state) report(`the final snapshot says ${short(terminal.state)}, the job ended ${short(final.state)}`, terminal.t);
  if (first === terminal) return; // opened after the job ended: a snapshot is all it gets
  const n = terminal.taskCount;
  const missing: number[] = [];
  for (let i = 0; i < n; i++) if (!outcomes.has(i)) missing.push(i);
  if (missing.length) {
    report(`missed ${missing.length} of ${n} task outcomes before the final snapshot (e.g. task ${missing.slice(0, 5).join(", ")})`, terminal.t);
  }
  const tally = { succeeded: 0, failed: 0, cancelled: 0 };
  for (const states of outcomes.values()) {
    const s = states[states.length - 1]!;
    if (s === "TASK_STATE_SUCCEEDED") tally.succeeded++;
    else if (s === "TASK_STATE_FAILED") tally.failed++;
    else tally.cancelled++;
  }
  if (!missing.length && (tally.succeeded !== terminal.counts.succeeded || tally.failed !== terminal.counts.failed)) {
    report(`outcomes seen (${tally.succeeded} succeeded, ${tally.failed} failed) disagree with the final snapshot (${terminal.counts.succeeded}, ${terminal.counts.failed})`, terminal.t);
  }
}

function checkLiveness(
  history: HistoryEvent[],
  meta: Extract<HistoryEvent, { type: "meta" }>,
  options: CheckOptions,
  add: (v: Violation) => void,
): void {
  const slack = options.livenessSlackMs ?? 2500;
  const persist = options.downPersistMs ?? meta.agentTimeoutMs + meta.heartbeatIntervalMs;
  const downSince = new Map<string, { nodeId: string; t: number }>();
  const absentAfter = options.absentAfterMs ?? 30_000;
  // An agent is "alive" from its start (or SIGCONT) until it exits (or SIGSTOP).
  const aliveSince = new Map<string, number | undefined>();
  // Cluster-wide faults in progress; while one is, nothing is judged.
  const open = new Map<number, FaultKind>();
  let clusterSince = 0;
  const flagged = new Map<string, string>(); // agent -> nodeId already reported (one finding per episode)
  const agents = new Set(meta.agents);
  // Nodes registered by an earlier process of the same agent stay DOWN for good: a restarted
  // agent registers a new node, so only nodes first seen after its start are its own.
  const known = new Map<string, Set<string>>();
  const stale = new Map<string, Set<string>>();
  const schedulers = new Set(meta.schedulers);
  for (const e of history) {
    // A scheduler starting or exiting (e.g. on losing its lease) means a failover: the agents'
    // clock for coming back starts again, as after a fault.
    if (e.type === "proc" && schedulers.has(e.name)) clusterSince = Math.max(clusterSince, e.t);
    if (e.type === "proc" && agents.has(e.name)) {
      if (e.event === "started") {
        aliveSince.set(e.name, e.t);
        stale.set(e.name, new Set(known.get(e.name) ?? []));
      } else aliveSince.set(e.name, undefined);
      flagged.delete(e.name);
    } else if (e.type === "fault-start") {
      if (e.kind === "pause-agent" || e.kind === "kill-agent") {
        aliveSince.set(e.target, undefined);
        flagged.delete(e.target);
      }
      if (CLUSTER_FAULTS.has(e.kind)) open.set(e.fault, e.kind);
    } else if (e.type === "fault-end") {
      if (e.kind === "pause-agent") aliveSince.set(e.target, e.t);
      if (open.delete(e.fault)) clusterSince = e.t;
    } else if (e.type === "nodes") {
      for (const n of e.nodes) {
        const set = known.get(n.agent) ?? new Set<string>();
        set.add(n.nodeId);
        known.set(n.agent, set);
      }
      if (open.size) continue;
      for (const agent of agents) {
        const since = aliveSince.get(agent);
        if (since === undefined) continue;
        const old = stale.get(agent);
        const mine = e.nodes.filter((n) => n.agent === agent && !old?.has(n.nodeId)).sort((a, b) => b.registeredAtMs - a.registeredAtMs)[0];
        // One heartbeat after the agent is back; after a scheduler or backend outage, the goal is
        // one agent timeout + 2 s (the agent must notice and re-register).
        const due = Math.max(since + meta.heartbeatIntervalMs + slack, clusterSince + meta.agentTimeoutMs + 2000 + slack);
        if (!mine) {
          if (e.t > Math.max(since, clusterSince) + absentAfter && !flagged.has(agent)) {
            flagged.set(agent, "");
            add({ property: "node-liveness", t: e.t, message: `${agent}'s process has been running since t=${since} ms (schedulers and backends up since t=${clusterSince} ms) but it has no node at t=${e.t} ms (not registered: did it give up reconnecting?)` });
          }
          continue;
        }
        if (mine.state !== "NODE_STATE_DOWN" || e.t <= due) {
          downSince.delete(agent);
          if (flagged.get(agent) === mine.nodeId) flagged.delete(agent);
          continue;
        }
        // DOWN past its due time. A starved machine can delay an agent's heartbeats without any
        // fault the harness knows of, so it must also stay DOWN a while: a node that never comes
        // back (the defect this property exists for) stays DOWN for good.
        const first = downSince.get(agent);
        if (!first || first.nodeId !== mine.nodeId) {
          downSince.set(agent, { nodeId: mine.nodeId, t: e.t });
          continue;
        }
        if (e.t - first.t >= persist && flagged.get(agent) !== mine.nodeId) {
          flagged.set(agent, mine.nodeId);
          add({
            property: "node-liveness",
            t: e.t,
            message: `${agent} (node ${mine.nodeId}) has been alive and reachable since t=${Math.max(since, clusterSince)} ms but is DOWN from t=${first.t} ms to at least t=${e.t} ms (due READY by t=${due} ms)`,
          });
        }
      }
    }
  }
}

function measureStalls(history: HistoryEvent[], endT: number): Stall[] {
  const progress = history.filter((e): e is Extract<HistoryEvent, { type: "progress" }> => e.type === "progress");
  const stalls: Stall[] = [];
  for (const e of history) {
    if (e.type !== "fault-end" || NO_STALL_FAULTS.has(e.kind)) continue;
    // Work was pending at the fault's end (the last sample at or before it; else the first after).
    const before = [...progress].reverse().find((p) => p.t <= e.t) ?? progress.find((p) => p.t > e.t);
    if (!before || before.pending === 0) continue;
    let prev = before.done;
    let doneAt: number | undefined;
    for (const p of progress) {
      if (p.t <= e.t) continue;
      if (p.done > prev) {
        doneAt = p.t;
        break;
      }
      prev = p.done; // a failover may recount lower: any rise after it is a completion
      if (p.pending === 0) {
        doneAt = p.t; // nothing left to wait for (e.g. cancelled)
        break;
      }
    }
    const recoveredAt = doneAt ?? endT;
    const overlappedBy = history.filter((f): f is Extract<HistoryEvent, { type: "fault-start" }> => f.type === "fault-start" && f.t > e.t && f.t < recoveredAt).map((f) => f.fault);
    stalls.push({ fault: e.fault, kind: e.kind, target: e.target, endedAt: e.t, stallMs: recoveredAt - e.t, unrecovered: doneAt === undefined, overlappedBy });
  }
  return stalls;
}
