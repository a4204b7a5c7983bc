// The chaos workload: several concurrent clients submitting a mix of the example kernels (task
// counts and sizes vary), each following its job one way — a WatchJob stream (normal or
// final_only), GetJob polling, or a cancel — and recording every call and watch event. At the
// end every acknowledged job is read back and each output compared with the kernel's JS reference.
import { readFileSync } from "node:fs";
import path from "node:path";
import { DistributeXClient, DistributeXError, type JobEvent } from "../../client/index.js";
import type { SubmitOptions } from "../../client/index.js";
import { contractMessage } from "../../common/proto.js";
import { repoRoot } from "../../common/paths.js";
import { exampleKernels, saxpyInput } from "../../kernels/reference/index.js";
import { jobNameFor } from "./checker.js";
import type { ClientOp, FinalResult, HistoryInput, JobSpec, TaskCountsLite, WatchMode } from "./history.js";
import type { StoredResult } from "../../scheduler/backends/types.js";
import { Rng } from "./prng.js";
import { connect, type ChaosRig } from "./rig.js";

/** Jobs read back at once at the end (each is a GetJob, GetResults pages and a Redis read). */
const FINAL_READ_CONCURRENCY = 8;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TERMINAL = new Set(["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"]);
const KERNELS = ["saxpy", "montecarlo_pi", "mandelbrot", "histogram", "gemm"] as const;

/** Whether SubmitJobRequest carries a client-chosen request id (issue 10, defect 6). */
export function contractHasRequestIds(): boolean {
  const fields = Object.keys(contractMessage("SubmitJobRequest").fields);
  return fields.some((f) => /^request_?id$/i.test(f));
}

/** The task inputs of a job, rebuilt from its spec (deterministic), so nothing big is kept in memory. */
export function buildInputs(spec: JobSpec): Uint8Array[] {
  const k = exampleKernels[spec.kernel]!;
  const inputs = k.makeTasks({ tasks: spec.tasks, size: spec.size, seed: spec.seed });
  if (spec.oversizedElements) {
    const n = spec.oversizedElements;
    const x = new Float32Array(n).map((_, i) => (i % 97) / 97);
    const y = new Float32Array(n).map((_, i) => (i % 89) / 89);
    inputs[0] = saxpyInput(1.5, x, y);
  }
  return inputs;
}

/** A random job: which kernel, how many tasks, how big. */
export function randomSpec(rng: Rng): JobSpec {
  const seed = rng.int(1, 1_000_000);
  if (rng.float() < 0.1) {
    // Many tiny tasks: where lost or late results show first.
    const tasks = rng.int(150, 400);
    return { kernel: "saxpy", tasks, size: tasks * 64, seed };
  }
  const kernel = rng.pick(KERNELS);
  switch (kernel) {
    case "saxpy": {
      const tasks = rng.int(4, 64);
      return { kernel, tasks, size: tasks * rng.int(256, 2048), seed };
    }
    case "montecarlo_pi": {
      const tasks = rng.int(2, 12);
      return { kernel, tasks, size: tasks * rng.int(50_000, 300_000), seed };
    }
    case "mandelbrot":
      return { kernel, tasks: rng.int(4, 16), size: rng.int(48, 128), seed };
    case "histogram": {
      const tasks = rng.int(4, 32);
      return { kernel, tasks, size: tasks * rng.int(1024, 4096), seed };
    }
    case "gemm":
      return { kernel, tasks: rng.int(2, 8), size: rng.int(32, 64), seed };
  }
}

export interface WorkloadOptions {
  clients: number;
  requestIds: boolean;
  /** How long one client follows one job before moving on (the checker still waits for it at the end). */
  followMs: number;
  record: (e: HistoryInput) => void;
}

type Mode = "watch" | "watch-final" | "poll" | "cancel";

/** One client process's view: its own connection, moved to another scheduler address on failures. */
/**
 * A workload client, given every scheduler address as a user of an HA cluster gives them
 * (`distx submit --scheduler a,b`): the typed client's own failover is part of what is tested.
 * With one address it retried a dead scheduler for its whole retry deadline (60 s) while the
 * standby was already serving.
 */
class Handle {
  private index = 0;
  private client: DistributeXClient | undefined;
  constructor(private readonly rig: ChaosRig) {}
  get(): DistributeXClient {
    const all = this.rig.addresses;
    const start = this.index % all.length;
    this.client ??= connect(this.rig.cluster, [...all.slice(start), ...all.slice(0, start)].join(","));
    return this.client;
  }
  /** A fresh client that tries the next scheduler address first (after its own retries gave up). */
  rotate(): void {
    this.client?.close();
    this.client = undefined;
    this.index++;
  }
  close(): void {
    this.client?.close();
    this.client = undefined;
  }
}

export class Workload {
  private call = 0;
  private watchSeq = 0;
  readonly acked = new Map<string, { logical: string; spec: JobSpec }>();
  /** The client settle() and the final reads share (see onActive). */
  private readClient?: Promise<DistributeXClient | undefined>;
  private readonly openWatches = new Map<number, { abort: (why: "disconnect" | "timeout") => void }>();
  private readonly kernelIds = new Map<string, string>();
  private stopped = false;
  private extraSeq = 0;
  private readonly followers = new Set<Promise<void>>();

  constructor(
    private readonly rig: ChaosRig,
    private readonly rng: Rng,
    private readonly options: WorkloadOptions,
  ) {}

  private record(e: HistoryInput): void {
    this.options.record(e);
  }

  /** One recorded client call: invoke, then ok or fail with the status code. */
  private async op<T>(h: Handle, client: string, op: ClientOp, fields: { logical?: string; requestId?: string; jobId?: string; spec?: JobSpec }, fn: (c: DistributeXClient) => Promise<T>, okFields?: (v: T) => Record<string, unknown>): Promise<T | undefined> {
    const call = ++this.call;
    this.record({ type: "invoke", client, op, call, ...fields });
    try {
      const v = await fn(h.get());
      this.record({ type: "ok", client, op, call, ...strip(fields), ...(okFields?.(v) ?? {}) } as HistoryInput);
      return v;
    } catch (err) {
      const code = err instanceof DistributeXError ? err.codeName : "ERROR";
      this.record({ type: "fail", client, op, call, ...strip(fields), code, message: (err as Error).message.slice(0, 300) });
      if (code === "UNAVAILABLE" || code === "DEADLINE_EXCEEDED" || code === "ERROR") h.rotate();
      return undefined;
    }
  }

  private async kernelId(h: Handle, client: string, kernel: string): Promise<string | undefined> {
    const known = this.kernelIds.get(kernel);
    if (known) return known;
    const bytes = readFileSync(path.join(repoRoot(), "build", "kernels", `${kernel}.wasm`));
    try {
      const { kernelId } = await h.get().registerKernel(bytes, { name: kernel });
      this.kernelIds.set(kernel, kernelId);
      return kernelId;
    } catch {
      h.rotate();
      return undefined;
    }
  }

  /** Submits with retries, as an application would: the same request id on every try when the API has them. */
  private async submit(h: Handle, client: string, logical: string, spec: JobSpec): Promise<string | undefined> {
    const inputs = buildInputs(spec);
    for (let attempt = 0; attempt < 5 && !this.stopped; attempt++) {
      const kernelId = await this.kernelId(h, client, spec.kernel);
      if (!kernelId) {
        await sleep(500);
        continue;
      }
      const requestId = this.options.requestIds ? logical : undefined;
      const opts: SubmitOptions & { requestId?: string } = { kernelId, inputs, name: jobNameFor(logical), skipResultCache: true, maxAttempts: 20, timeoutMs: 60_000, ...(requestId ? { requestId } : {}) };
      const r = await this.op(h, client, "submit", { logical, spec, ...(requestId ? { requestId } : {}) }, (c) => c.submitJob(opts), (v) => ({ jobId: v.jobId }));
      if (r) {
        this.acked.set(r.jobId, { logical, spec });
        return r.jobId;
      }
      await sleep(300 + attempt * 300);
    }
    return undefined;
  }

  async run(untilMs: number): Promise<void> {
    await Promise.all(Array.from({ length: this.options.clients }, (_, i) => this.client(i, untilMs)));
  }

  private async client(i: number, untilMs: number): Promise<void> {
    const name = `c${i}`;
    const rng = this.rng.fork(i + 1);
    const h = new Handle(this.rig);
    let seq = 0;
    try {
      while (!this.stopped && Date.now() < untilMs) {
        const spec = randomSpec(rng);
        const mode = rng.weighted<Mode>({ watch: 35, "watch-final": 25, poll: 25, cancel: 15 });
        if (mode === "cancel") spec.cancels = true;
        const logical = `${name}-${++seq}`;
        const jobId = await this.submit(h, name, logical, spec);
        if (jobId) await this.follow(h, name, jobId, mode, rng, Math.min(untilMs, Date.now() + this.options.followMs));
        await sleep(rng.int(100, 800));
      }
    } finally {
      h.close();
    }
  }

  private async follow(h: Handle, client: string, jobId: string, mode: Mode, rng: Rng, deadline: number): Promise<void> {
    if (mode === "watch" || mode === "watch-final") return this.watchUntilDone(h, client, jobId, mode === "watch" ? "normal" : "final", deadline);
    if (mode === "cancel") {
      await sleep(rng.int(0, 800));
      for (let i = 0; i < 3; i++) {
        if (await this.op(h, client, "cancel", { jobId }, (c) => c.cancelJob(jobId), (j) => ({ state: j.state }))) break;
        await sleep(300);
      }
    }
    await this.pollUntilDone(h, client, jobId, deadline, rng);
  }

  private async pollUntilDone(h: Handle, client: string, jobId: string, deadline: number, rng: Rng): Promise<void> {
    while (!this.stopped && Date.now() < deadline) {
      const j = await this.op(h, client, "getJob", { jobId }, (c) => c.getJob(jobId), (j) => ({ state: j.state, counts: countsOf(j.counts) }));
      if (j && TERMINAL.has(j.state)) return;
      await sleep(rng.int(200, 600));
    }
  }

  private async watchUntilDone(h: Handle, client: string, jobId: string, mode: WatchMode, deadline: number): Promise<void> {
    while (!this.stopped && Date.now() < deadline) {
      const watch = ++this.watchSeq;
      const ac = new AbortController();
      let why: "disconnect" | "timeout" | undefined;
      this.openWatches.set(watch, {
        abort: (w) => {
          why = w;
          ac.abort();
        },
      });
      const timer = setTimeout(() => this.openWatches.get(watch)?.abort("timeout"), Math.max(0, deadline - Date.now()));
      this.record({ type: "watch-open", client, watch, jobId, mode });
      let terminal = false;
      try {
        for await (const ev of h.get().watchJob(jobId, { finalOnly: mode === "final", signal: ac.signal })) {
          this.recordWatchEvent(watch, jobId, ev);
          if (ev.job && TERMINAL.has(ev.job.state)) terminal = true;
        }
        this.record({ type: "watch-end", watch, jobId, reason: why ?? "ended" });
      } catch (err) {
        const code = err instanceof DistributeXError ? err.codeName : "ERROR";
        this.record({ type: "watch-end", watch, jobId, reason: why ?? "error", code, message: (err as Error).message.slice(0, 300) });
        if (!why) {
          h.rotate();
          await sleep(300);
        }
      } finally {
        clearTimeout(timer);
        this.openWatches.delete(watch);
      }
      if (terminal || why === "timeout") return;
      if (!why && !terminal) {
        // The stream ended cleanly without a final snapshot: the checker flags it; poll instead.
        return this.pollUntilDone(h, client, jobId, deadline, this.rng.fork(watch));
      }
      // A disconnect (nemesis) or an error: watch again, as a client would.
    }
  }

  private recordWatchEvent(watch: number, jobId: string, ev: JobEvent): void {
    if (ev.job) {
      this.record({ type: "watch-event", watch, jobId, kind: "snapshot", state: ev.job.state, counts: countsOf(ev.job.counts), taskCount: ev.job.taskCount });
    } else if (ev.task) {
      this.record({ type: "watch-event", watch, jobId, kind: "task", index: ev.task.taskIndex, state: ev.task.state, attempt: ev.task.attempt });
    }
  }

  watching(): boolean {
    return this.openWatches.size > 0;
  }

  /** The nemesis: drop one open watch stream (the client reconnects). */
  disconnectOne(rng: Rng): string {
    const r = rng.float(); // drawn whether or not a watch is open, so the fault sequence replays from the seed
    const ids = [...this.openWatches.keys()];
    if (!ids.length) return "no open watch";
    const id = ids[Math.floor(r * ids.length)]!;
    this.openWatches.get(id)!.abort("disconnect");
    return `watch ${id}`;
  }

  /**
   * The nemesis: a job whose task 0 has an output larger than the events topic accepts. Correct
   * behaviour is that task failing with a clear code while the rest go through; it may fail.
   */
  async submitOversized(elements: number): Promise<string> {
    const client = "nemesis";
    const h = new Handle(this.rig);
    const logical = `${client}-${++this.extraSeq}`;
    const spec: JobSpec = { kernel: "saxpy", tasks: 8, size: 8 * 1024, seed: 7, oversizedElements: elements, mayFail: true };
    const jobId = await this.submit(h, client, logical, spec);
    if (!jobId) {
      h.close();
      return `${logical}: not acknowledged`;
    }
    const follower = this.pollUntilDone(h, client, jobId, Date.now() + this.options.followMs, this.rng.fork(999)).finally(() => h.close());
    this.followers.add(follower);
    void follower.finally(() => this.followers.delete(follower));
    return `${logical} = ${jobId}, task 0 output ${(elements * 4) / 1024} KiB`;
  }

  /** Stops submitting and drops open watches (recorded as timeouts). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const w of this.openWatches.values()) w.abort("timeout");
    await Promise.all([...this.followers]);
  }

  /** Runs `fn` on whichever scheduler answers (one client, kept while it answers), trying for up to `timeoutMs`. */
  private async onActive<T>(fn: (c: DistributeXClient) => Promise<T>, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown = new Error("no scheduler answered");
    while (Date.now() < deadline) {
      this.readClient ??= this.rig.activeClient();
      const c = await this.readClient;
      if (c) {
        try {
          return await fn(c);
        } catch (err) {
          // NOT_FOUND and the like are answers, not unavailability: the caller records them.
          if (err instanceof DistributeXError && !["UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED"].includes(err.codeName)) throw err;
          last = err;
        }
      }
      // Not answering (or none found): the next try looks for the active scheduler again.
      if (this.readClient && (await this.readClient) === c) {
        c?.close();
        this.readClient = undefined;
      }
      await sleep(500);
    }
    throw last;
  }

  /** Waits (after the faults are healed) until a scheduler answers with every agent READY and every acknowledged job is final, or the time is up. */
  async settle(timeoutMs: number, agents: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      try {
        const done = await this.onActive(async (c) => {
          const ready = (await c.listNodes()).filter((n) => n.state === "NODE_STATE_READY").length;
          const state = new Map((await c.listJobs(1_000_000)).map((j) => [j.jobId, j.state]));
          // Jobs the scheduler no longer retains are finished if the store says so.
          const store = await this.rig.store();
          const finished = new Set(await store.redis.zrange(`${this.rig.prefix}:jobs:finished`, 0, -1));
          return ready >= agents && [...this.acked.keys()].every((id) => TERMINAL.has(state.get(id) ?? "") || (!state.has(id) && finished.has(id)));
        }, Math.max(1000, deadline - Date.now()));
        if (done) return;
      } catch {
        // no scheduler yet, or one that does not know the jobs: keep waiting until the deadline
      }
      await sleep(1000);
    }
  }

  /**
   * Reads every acknowledged job back (several at a time, through one client) and checks each
   * output against the reference. A job the scheduler no longer retains (more than
   * retainFinishedJobs finished after it) is read from the store, with the product's own code.
   */
  async finalReads(): Promise<void> {
    const jobs = [...this.acked];
    let next = 0;
    const reader = async () => {
      while (next < jobs.length) {
        const [jobId, { logical, spec }] = jobs[next++]!;
        await this.finalRead(jobId, logical, spec);
      }
    };
    try {
      await Promise.all(Array.from({ length: FINAL_READ_CONCURRENCY }, reader));
      try {
        const listed = await this.onActive((c) => c.listJobs(1_000_000));
        this.record({ type: "jobs", jobs: listed.map((j) => ({ jobId: j.jobId, name: j.name, state: j.state })) });
      } catch {
        // no listing: the checker says the idempotence property could not be checked
      }
    } finally {
      const client = this.readClient;
      this.readClient = undefined;
      (await client)?.close();
    }
  }

  private async finalRead(jobId: string, logical: string, spec: JobSpec): Promise<void> {
    const stored = await this.rig.storedResults(jobId);
    const storedField = stored !== undefined ? { stored } : {};
    const inputs = buildInputs(spec);
    const kernel = exampleKernels[spec.kernel]!;
    const judge = (r: { taskIndex: number; state: string; output: Buffer; error?: { code: string; message?: string } | null }): FinalResult => {
      const fr: FinalResult = { index: r.taskIndex, state: r.state };
      if (r.state === "TASK_STATE_SUCCEEDED") {
        const input = inputs[r.taskIndex];
        const c = input ? kernel.check(input, r.output) : { ok: false, detail: "no such task index" };
        fr.ok = c.ok;
        if (!c.ok) fr.detail = c.detail.slice(0, 200);
      } else if (r.error) fr.code = `${r.error.code}${r.error.message ? `: ${r.error.message.slice(0, 120)}` : ""}`;
      return fr;
    };
    try {
      const { job, results } = await this.onActive(async (c) => ({ job: await c.getJob(jobId), results: await c.getResults(jobId) }));
      this.record({ type: "final", jobId, logical, spec, state: job.state, taskCount: job.taskCount, results: results.map(judge), source: "api", ...storedField });
    } catch (err) {
      const fromStore = err instanceof DistributeXError && err.codeName === "NOT_FOUND" ? await this.readEvicted(jobId, spec.tasks) : undefined;
      if (fromStore) {
        // Stored outputs are views into one framed value at any offset; the checks read them as typed arrays.
        const aligned = fromStore.results.map((r) => ({ ...r, output: Buffer.from(new Uint8Array(r.output).buffer) }));
        this.record({ type: "final", jobId, logical, spec, state: fromStore.state, taskCount: spec.tasks, results: aligned.map(judge), source: "store", ...storedField });
        return;
      }
      const state = err instanceof DistributeXError ? err.codeName : "UNREADABLE";
      this.record({ type: "final", jobId, logical, spec, state, taskCount: spec.tasks, results: [], error: (err as Error).message.slice(0, 300), ...storedField });
    }
  }

  /**
   * The job from the store, only if the scheduler was entitled to forget it: it retired the job
   * (a finished job leaves the store's finished set only when the scheduler retires it past
   * retainFinishedJobs), the set is full, and the stored job is finished. A job the scheduler
   * should still hold stays NOT_FOUND (a violation).
   */
  private async readEvicted(jobId: string, taskCount: number): Promise<{ state: string; results: StoredResult[] } | undefined> {
    const store = await this.rig.store();
    const finished = `${this.rig.prefix}:jobs:finished`;
    const [rank, retained] = await Promise.all([store.redis.zrank(finished, jobId), store.redis.zcard(finished)]);
    if (rank !== null || retained < this.rig.retainFinishedJobs) return undefined;
    const meta = await store.getJobMeta(jobId);
    const state = meta ? (JSON.parse(meta) as { state: string }).state : undefined;
    if (!state || !["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"].includes(state)) return undefined;
    return { state, results: await store.getResults(jobId, 0, taskCount) };
  }
}

function strip<T extends { spec?: JobSpec }>(fields: T): Omit<T, "spec"> {
  const { spec: _spec, ...rest } = fields;
  return rest;
}

export function countsOf(c: { pending: number; assigned: number; running: number; succeeded: number; failed: number; cancelled: number } | null | undefined): TaskCountsLite {
  return {
    pending: c?.pending ?? 0,
    assigned: c?.assigned ?? 0,
    running: c?.running ?? 0,
    succeeded: c?.succeeded ?? 0,
    failed: c?.failed ?? 0,
    cancelled: c?.cancelled ?? 0,
  };
}
