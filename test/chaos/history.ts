// The chaos run's history: every client call (invoke, then ok or fail), every watch event, every
// fault, every daemon start and exit, and the monitor's samples of nodes and progress. One JSON
// object per line (history.jsonl), in the order the harness saw them; `t` is ms since the run began.
// The checker (checker.ts) reads only this, so a history can be replayed and checked offline.
import { createWriteStream, readFileSync, type WriteStream } from "node:fs";

export type ClientOp = "submit" | "getJob" | "cancel" | "getResults" | "listJobs";

export interface TaskCountsLite {
  pending: number;
  assigned: number;
  running: number;
  succeeded: number;
  failed: number;
  cancelled: number;
}

/** What the workload asked for, so the checker knows the task count and what may legitimately fail. */
export interface JobSpec {
  kernel: string;
  tasks: number;
  /** makeTasks' size and seed: the inputs are rebuilt from them to check outputs at the end. */
  size?: number;
  seed?: number;
  /** Task 0's input is this many saxpy elements (an output larger than the broker accepts). */
  oversizedElements?: number;
  /** A task's output is larger than the broker accepts: that task may end FAILED (not silently stall). */
  mayFail?: boolean;
  /** The client cancels this job: CANCELLED is a legitimate end. */
  cancels?: boolean;
}

export type HistoryEvent =
  | { t: number; type: "meta"; seed: number; minutes: number; requestIds: boolean; heartbeatIntervalMs: number; agentTimeoutMs: number; leaseTtlMs: number; agents: string[]; schedulers: string[] }
  | { t: number; type: "invoke"; client: string; op: ClientOp; call: number; requestId?: string; logical?: string; jobId?: string; spec?: JobSpec }
  | { t: number; type: "ok"; client: string; op: ClientOp; call: number; requestId?: string; logical?: string; jobId?: string; state?: string; counts?: TaskCountsLite }
  | { t: number; type: "fail"; client: string; op: ClientOp; call: number; requestId?: string; logical?: string; jobId?: string; code: string; message: string }
  | { t: number; type: "watch-open"; client: string; watch: number; jobId: string; mode: WatchMode }
  | { t: number; type: "watch-event"; watch: number; jobId: string; kind: "snapshot"; state: string; counts: TaskCountsLite; taskCount: number }
  | { t: number; type: "watch-event"; watch: number; jobId: string; kind: "task"; index: number; state: string; attempt: number }
  | { t: number; type: "watch-end"; watch: number; jobId: string; reason: "ended" | "error" | "disconnect" | "timeout"; code?: string; message?: string }
  | { t: number; type: "fault-start"; fault: number; kind: FaultKind; target: string; detail?: string }
  | { t: number; type: "fault-end"; fault: number; kind: FaultKind; target: string; detail?: string }
  | { t: number; type: "proc"; name: string; event: "started" | "exited"; pid?: number; code?: number | null; signal?: string | null; expected?: boolean }
  | { t: number; type: "nodes"; nodes: { agent: string; nodeId: string; state: string; registeredAtMs: number }[] }
  | { t: number; type: "progress"; done: number; pending: number }
  | { t: number; type: "final"; jobId: string; logical: string; spec: JobSpec; state: string; taskCount: number; results: FinalResult[]; stored?: number; error?: string; source?: "api" | "store" }
  | { t: number; type: "jobs"; jobs: { jobId: string; name: string; state: string }[] }
  | { t: number; type: "end"; healedAt: number };

export type WatchMode = "normal" | "final";

export interface FinalResult {
  index: number;
  state: string;
  /** The output matches the kernel's JS reference (SUCCEEDED tasks only). */
  ok?: boolean;
  detail?: string;
  code?: string;
}

export type FaultKind =
  | "kill-agent"
  | "pause-agent"
  | "kill-scheduler"
  | "pause-scheduler"
  | "kill-redis"
  | "pause-redis"
  | "kill-broker"
  | "pause-broker"
  | "redis-oom"
  | "redis-pause-writes"
  | "broker-small-max-message"
  | "oversized-output"
  | "client-disconnect";

export const FAULT_KINDS: FaultKind[] = [
  "kill-agent",
  "pause-agent",
  "kill-scheduler",
  "pause-scheduler",
  "kill-redis",
  "pause-redis",
  "kill-broker",
  "pause-broker",
  "redis-oom",
  "redis-pause-writes",
  "broker-small-max-message",
  "oversized-output",
  "client-disconnect",
];

/** Distributes a "without t" event over the union, so callers can write record({ type: ..., ... }). */
type WithoutT<E> = E extends unknown ? Omit<E, "t"> : never;
export type HistoryInput = WithoutT<HistoryEvent>;

/** Appends events to history.jsonl (and keeps them in memory for the checker at the end). */
export class HistoryRecorder {
  readonly events: HistoryEvent[] = [];
  private readonly out: WriteStream | undefined;
  readonly startedAt = Date.now();

  constructor(file?: string) {
    this.out = file ? createWriteStream(file, { flags: "w" }) : undefined;
  }

  now(): number {
    return Date.now() - this.startedAt;
  }

  record(e: HistoryInput): HistoryEvent {
    const ev = { t: this.now(), ...e } as HistoryEvent;
    this.events.push(ev);
    this.out?.write(`${JSON.stringify(ev)}\n`);
    return ev;
  }

  async close(): Promise<void> {
    if (!this.out) return;
    await new Promise<void>((resolve) => this.out!.end(resolve));
  }
}

export function readHistory(file: string): HistoryEvent[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as HistoryEvent);
}
