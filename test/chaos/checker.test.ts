// The chaos checker on synthetic histories: a clean one passes, and each kind of violation the
// harness exists to catch is found and attributed to the right property.
import { describe, expect, it } from "vitest";
import { check, jobNameFor, type Property } from "./checker.js";
import type { FinalResult, HistoryEvent, JobSpec } from "./history.js";

const counts = (c: Partial<Record<"pending" | "assigned" | "running" | "succeeded" | "failed" | "cancelled", number>> = {}) => ({
  pending: 0,
  assigned: 0,
  running: 0,
  succeeded: 0,
  failed: 0,
  cancelled: 0,
  ...c,
});

const meta = (requestIds = false): HistoryEvent => ({
  t: 0,
  type: "meta",
  seed: 1,
  minutes: 1,
  requestIds,
  heartbeatIntervalMs: 500,
  agentTimeoutMs: 3000,
  leaseTtlMs: 2000,
  agents: ["agent-0", "agent-1"],
  schedulers: ["scheduler-a", "scheduler-b"],
});

const ok = (n: number): FinalResult[] => Array.from({ length: n }, (_, index) => ({ index, state: "TASK_STATE_SUCCEEDED", ok: true }));

/** A submit that was acknowledged, and its final read. */
function job(jobId: string, logical: string, n: number, opts: { state?: string; results?: FinalResult[]; spec?: Partial<JobSpec>; call?: number; stored?: number } = {}): HistoryEvent[] {
  const spec: JobSpec = { kernel: "saxpy", tasks: n, ...opts.spec };
  const call = opts.call ?? Number(jobId.replace(/\D/g, "") || 1);
  return [
    { t: 10, type: "invoke", client: "c0", op: "submit", call, logical, spec },
    { t: 20, type: "ok", client: "c0", op: "submit", call, logical, jobId },
    {
      t: 5000,
      type: "final",
      jobId,
      logical,
      spec,
      state: opts.state ?? "JOB_STATE_SUCCEEDED",
      taskCount: n,
      results: opts.results ?? ok(n),
      ...(opts.stored !== undefined ? { stored: opts.stored } : {}),
    },
  ];
}

function watch(id: number, jobId: string, n: number, outcomes: number[], opts: { mode?: "normal" | "final"; terminal?: boolean; reason?: "ended" | "error"; extra?: HistoryEvent[] } = {}): HistoryEvent[] {
  const evs: HistoryEvent[] = [
    { t: 30, type: "watch-open", client: "c0", watch: id, jobId, mode: opts.mode ?? "final" },
    { t: 31, type: "watch-event", watch: id, jobId, kind: "snapshot", state: "JOB_STATE_RUNNING", counts: counts({ pending: n }), taskCount: n },
  ];
  let t = 40;
  for (const index of outcomes) evs.push({ t: t++, type: "watch-event", watch: id, jobId, kind: "task", index, state: "TASK_STATE_SUCCEEDED", attempt: 1 });
  evs.push(...(opts.extra ?? []));
  if (opts.terminal !== false) evs.push({ t: 900, type: "watch-event", watch: id, jobId, kind: "snapshot", state: "JOB_STATE_SUCCEEDED", counts: counts({ succeeded: n }), taskCount: n });
  evs.push({ t: 901, type: "watch-end", watch: id, jobId, reason: opts.reason ?? "ended" });
  return evs;
}

const listing = (jobs: { jobId: string; logical: string }[]): HistoryEvent => ({
  t: 6000,
  type: "jobs",
  jobs: jobs.map((j) => ({ jobId: j.jobId, name: jobNameFor(j.logical), state: "JOB_STATE_SUCCEEDED" })),
});

const end: HistoryEvent = { t: 7000, type: "end", healedAt: 4000 };

function only(history: HistoryEvent[]): { property: Property; count: number; first: string } {
  const r = check(history);
  const props = [...new Set(r.violations.map((v) => v.property))];
  expect(props.length, JSON.stringify(r.violations, null, 1)).toBe(1);
  return { property: props[0]!, count: r.violations.length, first: r.violations[0]!.message };
}

describe("chaos checker", () => {
  it("passes a clean history and measures nothing as a violation", () => {
    const h = [meta(), ...job("j1", "c0-1", 4), ...watch(1, "j1", 4, [0, 1, 2, 3]), listing([{ jobId: "j1", logical: "c0-1" }]), end];
    const r = check(h);
    expect(r.violations).toEqual([]);
    expect(r.stats.acknowledged).toBe(1);
    expect(r.stats.tasks).toBe(4);
    expect(r.skipped.map((s) => s.property)).toContain("submit-idempotent");
  });

  it("finds an acknowledged job that never reached a final state", () => {
    const v = only([meta(), ...job("j1", "c0-1", 4, { state: "JOB_STATE_RUNNING", results: ok(2) }), end]);
    expect(v.property).toBe("job-completes");
    expect(v.first).toMatch(/still JOB_STATE_RUNNING/);
  });

  it("finds an acknowledged job with no final read at all", () => {
    const h: HistoryEvent[] = [meta(), { t: 1, type: "invoke", client: "c0", op: "submit", call: 1, logical: "c0-1" }, { t: 2, type: "ok", client: "c0", op: "submit", call: 1, logical: "c0-1", jobId: "j1" }, end];
    expect(only(h).property).toBe("job-completes");
  });

  it("finds an acknowledged job the scheduler no longer knows (GetJob NOT_FOUND after a failover)", () => {
    const h = job("j1", "c0-1", 4);
    const f = h[2] as Extract<HistoryEvent, { type: "final" }>;
    h[2] = { ...f, state: "NOT_FOUND", results: [], error: "no job j1", stored: 4 };
    const v = only([meta(), ...h, end]);
    expect(v.property).toBe("job-completes");
    expect(v.first).toMatch(/NOT_FOUND.*store holds 4 of 4/);
  });

  it("finds results lost from a job a client saw SUCCEEDED, even when the scheduler no longer knows the job", () => {
    const h = job("j1", "c0-1", 4);
    const f = h[2] as Extract<HistoryEvent, { type: "final" }>;
    h[2] = { ...f, state: "NOT_FOUND", results: [], error: "no job j1", stored: 3 };
    const seen: HistoryEvent = { t: 100, type: "ok", client: "c0", op: "getJob", call: 9, jobId: "j1", state: "JOB_STATE_SUCCEEDED" };
    const r = check([meta(), ...h, seen, end]);
    expect(r.violations.map((v) => v.property).sort()).toEqual(["exactly-one-result", "job-completes"]);
    expect(r.violations.find((v) => v.property === "exactly-one-result")!.message).toMatch(/seen SUCCEEDED .* holds 3 of 4/);
  });

  it("finds a FAILED job that could not legitimately fail, and accepts it when it may", () => {
    const failed: FinalResult[] = [...ok(3), { index: 3, state: "TASK_STATE_FAILED", code: "RESULT_TOO_LARGE" }];
    expect(only([meta(), ...job("j1", "c0-1", 4, { state: "JOB_STATE_FAILED", results: failed }), end]).property).toBe("job-completes");
    expect(check([meta(), ...job("j1", "c0-1", 4, { state: "JOB_STATE_FAILED", results: failed, spec: { mayFail: true } }), end]).violations).toEqual([]);
  });

  it("finds a SUCCEEDED job with results missing from the store (results lost)", () => {
    const v = only([meta(), ...job("j1", "c0-1", 400, { results: ok(357) }), end]);
    expect(v.property).toBe("exactly-one-result");
    expect(v.first).toMatch(/only 357 of 400 results/);
  });

  it("finds a task with two stored results, and a store count that disagrees", () => {
    expect(only([meta(), ...job("j1", "c0-1", 3, { results: [...ok(3), { index: 1, state: "TASK_STATE_SUCCEEDED", ok: true }] }), end]).property).toBe("exactly-one-result");
    expect(only([meta(), ...job("j1", "c0-1", 3, { stored: 2 }), end]).property).toBe("exactly-one-result");
  });

  it("finds an output that differs from the reference", () => {
    const results = ok(3);
    results[2] = { index: 2, state: "TASK_STATE_SUCCEEDED", ok: false, detail: "y[0] = 3 want 4" };
    const v = only([meta(), ...job("j1", "c0-1", 3, { results }), end]);
    expect(v.property).toBe("output-correct");
    expect(v.first).toMatch(/task 2/);
  });

  it("finds a CANCELLED job nobody cancelled; a cancelling client's job may end CANCELLED", () => {
    const cancelled: FinalResult[] = [{ index: 0, state: "TASK_STATE_CANCELLED" }];
    expect(only([meta(), ...job("j1", "c0-1", 1, { state: "JOB_STATE_CANCELLED", results: cancelled }), end]).property).toBe("job-completes");
    expect(check([meta(), ...job("j1", "c0-1", 1, { state: "JOB_STATE_CANCELLED", results: cancelled, spec: { cancels: true } }), end]).violations).toEqual([]);
  });

  it("with request ids: finds one request id that ran as two jobs (a retried submit)", () => {
    const h: HistoryEvent[] = [
      meta(true),
      { t: 1, type: "invoke", client: "c0", op: "submit", call: 1, requestId: "c0-1", logical: "c0-1" },
      { t: 2, type: "fail", client: "c0", op: "submit", call: 1, requestId: "c0-1", logical: "c0-1", code: "DEADLINE_EXCEEDED", message: "deadline" },
      ...job("j2", "c0-1", 2, { call: 2 }),
      listing([{ jobId: "j1", logical: "c0-1" }, { jobId: "j2", logical: "c0-1" }]),
      end,
    ];
    const v = only(h);
    expect(v.property).toBe("submit-idempotent");
    expect(v.first).toMatch(/ran as 2 jobs/);
  });

  it("without request ids: skips the idempotence property but notes duplicate runs", () => {
    const h: HistoryEvent[] = [meta(false), ...job("j2", "c0-1", 2), listing([{ jobId: "j1", logical: "c0-1" }, { jobId: "j2", logical: "c0-1" }]), end];
    const r = check(h);
    expect(r.violations).toEqual([]);
    expect(r.skipped.map((s) => s.property)).toContain("submit-idempotent");
    expect(r.notes.join("\n")).toMatch(/more than one job/);
  });

  it("finds a watch that ended before the last outcomes", () => {
    const v = only([meta(), ...job("j1", "c0-1", 64), ...watch(1, "j1", 64, [...Array(55).keys()]), end]);
    expect(v.property).toBe("watch-outcomes");
    expect(v.first).toMatch(/missed 9 of 64/);
  });

  it("finds an outcome seen twice in one watch, and an event after the final snapshot", () => {
    expect(only([meta(), ...job("j1", "c0-1", 3), ...watch(1, "j1", 3, [0, 1, 1, 2]), end]).first).toMatch(/came twice/);
    const late: HistoryEvent = { t: 950, type: "watch-event", watch: 1, jobId: "j1", kind: "task", index: 0, state: "TASK_STATE_SUCCEEDED", attempt: 1 };
    const h = [meta(), ...job("j1", "c0-1", 1), ...watch(1, "j1", 1, [0])];
    h.splice(h.length - 1, 0, late);
    expect(only([...h, end]).first).toMatch(/after the final snapshot/);
  });

  it("finds a watch outcome that contradicts the stored result, and a stream that ends without a final snapshot", () => {
    const results: FinalResult[] = [{ index: 0, state: "TASK_STATE_FAILED", code: "TRAP" }];
    const h = [meta(), ...job("j1", "c0-1", 1, { state: "JOB_STATE_FAILED", results, spec: { mayFail: true } }), ...watch(1, "j1", 1, [0], { terminal: false })];
    const r = check([...h, end]);
    expect(r.violations.map((v) => v.property)).toEqual(["watch-outcomes", "watch-outcomes"]);
    expect(r.violations.map((v) => v.message).join("\n")).toMatch(/stored result is FAILED[\s\S]*without a final job snapshot/);
  });

  it("does not judge completeness of a watch cut by an error (the client resumes with a new one)", () => {
    const h = [meta(), ...job("j1", "c0-1", 4), ...watch(1, "j1", 4, [0], { terminal: false, reason: "error" }), ...watch(2, "j1", 4, [0, 1, 2, 3]), end];
    expect(check(h).violations).toEqual([]);
  });

  it("finds a node that stays DOWN after its agent resumed, but not one that comes back within a heartbeat", () => {
    const nodes = (t: number, state: string): HistoryEvent => ({
      t,
      type: "nodes",
      nodes: [
        { agent: "agent-0", nodeId: "n0", state, registeredAtMs: 1 },
        { agent: "agent-1", nodeId: "n1", state: "NODE_STATE_READY", registeredAtMs: 1 },
      ],
    });
    const base: HistoryEvent[] = [
      meta(),
      { t: 0, type: "proc", name: "agent-0", event: "started", pid: 1 },
      { t: 0, type: "proc", name: "agent-1", event: "started", pid: 2 },
      { t: 1000, type: "fault-start", fault: 1, kind: "pause-agent", target: "agent-0" },
      nodes(4500, "NODE_STATE_DOWN"),
      { t: 5000, type: "fault-end", fault: 1, kind: "pause-agent", target: "agent-0" },
    ];
    const stuck = [...base, nodes(5400, "NODE_STATE_DOWN"), nodes(7500, "NODE_STATE_DOWN"), nodes(9000, "NODE_STATE_DOWN"), nodes(11_000, "NODE_STATE_DOWN"), nodes(13_000, "NODE_STATE_DOWN"), end];
    const v = only(stuck);
    expect(v.property).toBe("node-liveness");
    expect(v.count).toBe(1);
    expect(v.first).toMatch(/agent-0 .* is DOWN from t=9000 ms/);
    expect(check([...base, nodes(5400, "NODE_STATE_DOWN"), nodes(5800, "NODE_STATE_READY"), nodes(9000, "NODE_STATE_READY"), end]).violations).toEqual([]);
    // Late but back (a starved machine): not the never-comes-back defect.
    expect(check([...base, nodes(9000, "NODE_STATE_DOWN"), nodes(10_000, "NODE_STATE_READY"), nodes(14_000, "NODE_STATE_READY"), end]).violations).toEqual([]);
  });

  it("does not hold a restarted agent to its old process's node, but finds an agent that never registers again", () => {
    const sample = (t: number, nodes: [string, string, string][]): HistoryEvent => ({
      t,
      type: "nodes",
      nodes: nodes.map(([agent, nodeId, state], i) => ({ agent, nodeId, state, registeredAtMs: i + t })),
    });
    const h: HistoryEvent[] = [
      meta(),
      { t: 0, type: "proc", name: "agent-0", event: "started", pid: 1 },
      { t: 0, type: "proc", name: "agent-1", event: "started", pid: 2 },
      sample(500, [["agent-0", "a", "NODE_STATE_READY"], ["agent-1", "b", "NODE_STATE_READY"]]),
      { t: 1000, type: "fault-start", fault: 1, kind: "kill-agent", target: "agent-0" },
      { t: 1001, type: "proc", name: "agent-0", event: "exited", pid: 1, expected: true },
      { t: 2000, type: "proc", name: "agent-0", event: "started", pid: 3 },
      { t: 2000, type: "fault-end", fault: 1, kind: "kill-agent", target: "agent-0" },
      // The new process takes a while to start and register; its old node is DOWN meanwhile.
      sample(6000, [["agent-0", "a", "NODE_STATE_DOWN"], ["agent-1", "b", "NODE_STATE_READY"]]),
      sample(9000, [["agent-0", "a", "NODE_STATE_DOWN"], ["agent-0", "c", "NODE_STATE_READY"], ["agent-1", "b", "NODE_STATE_READY"]]),
      end,
    ];
    expect(check(h).violations).toEqual([]);
    const never = [...h.slice(0, -2), sample(40_000, [["agent-0", "a", "NODE_STATE_DOWN"], ["agent-1", "b", "NODE_STATE_READY"]]), end];
    const v = only(never);
    expect(v.property).toBe("node-liveness");
    expect(v.first).toMatch(/agent-0.*no node/);
  });

  it("finds a daemon that exited without being killed", () => {
    const v = only([meta(), { t: 100, type: "proc", name: "agent-1", event: "exited", code: 1, expected: false }, end]);
    expect(v.property).toBe("no-unexpected-exit");
  });

  it("measures the longest stall after a fault while work is pending", () => {
    const h: HistoryEvent[] = [
      meta(),
      { t: 0, type: "progress", done: 0, pending: 10 },
      { t: 100, type: "fault-start", fault: 1, kind: "kill-agent", target: "agent-0" },
      { t: 500, type: "progress", done: 2, pending: 8 },
      { t: 1000, type: "fault-end", fault: 1, kind: "kill-agent", target: "agent-0" },
      { t: 1500, type: "progress", done: 2, pending: 8 },
      { t: 4000, type: "progress", done: 5, pending: 5 },
      { t: 5000, type: "fault-start", fault: 2, kind: "kill-redis", target: "redis" },
      { t: 6000, type: "fault-end", fault: 2, kind: "kill-redis", target: "redis" },
      { t: 6500, type: "progress", done: 5, pending: 5 },
      end,
    ];
    const r = check(h);
    expect(r.stalls.map((s) => [s.fault, s.stallMs, s.unrecovered])).toEqual([
      [1, 3000, false],
      [2, 1000, true],
    ]);
    expect(r.stats.longestStall?.fault).toBe(1);
    expect(r.stats.faultsByKind).toEqual({ "kill-agent": 1, "kill-redis": 1 });
    expect(r.stalls.map((s) => s.overlappedBy)).toEqual([[], []]);
  });

  it("says which later faults began before the cluster recovered from a stall", () => {
    const h: HistoryEvent[] = [
      meta(),
      { t: 0, type: "progress", done: 0, pending: 10 },
      { t: 100, type: "fault-start", fault: 1, kind: "kill-scheduler", target: "scheduler-0" },
      { t: 1000, type: "fault-end", fault: 1, kind: "kill-scheduler", target: "scheduler-0" },
      { t: 3000, type: "fault-start", fault: 2, kind: "kill-scheduler", target: "scheduler-1" },
      { t: 3500, type: "fault-end", fault: 2, kind: "kill-scheduler", target: "scheduler-1" },
      { t: 7000, type: "progress", done: 4, pending: 6 },
      end,
    ];
    const r = check(h);
    expect(r.stalls.map((s) => [s.fault, s.stallMs, s.overlappedBy])).toEqual([
      [1, 6000, [2]],
      [2, 3500, []],
    ]);
  });
});
