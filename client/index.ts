// The typed DistributeX client. Wraps the generated gRPC stubs with promises, async
// iteration for streams, and errors that carry the gRPC status code.
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import * as grpc from "@grpc/grpc-js";
import { statusName } from "../common/errors.js";
import { channelCredentials, profileDir, readProfile, resolveCredentials, type Credentials } from "./credentials.js";
import { CHANNEL_OPTIONS, v1 } from "../common/proto.js";
import type { Alert, DistributeXGrpcClient, Job, JobEvent, KernelInfo, Node, TaskResult } from "../common/types.js";
import { TERMINAL_JOB_STATES } from "../common/types.js";

export type { Alert, Job, JobEvent, KernelInfo, Node, TaskResult };

export class DistributeXError extends Error {
  override readonly name = "DistributeXError";
  constructor(
    readonly code: grpc.status,
    readonly details: string,
    readonly method: string,
  ) {
    super(`${method}: ${statusName(code)}: ${details}`);
  }
  get codeName(): string {
    return statusName(this.code);
  }
}

export interface SubmitOptions {
  kernelId: string;
  inputs: Uint8Array[];
  priority?: number;
  timeoutMs?: number;
  maxAttempts?: number;
  name?: string;
  /** Run every task even if an identical one has a cached result. */
  skipResultCache?: boolean;
  resources?: { cores?: number; memoryBytes?: number; gpu?: boolean; nodeSelector?: Record<string, string> };
  /** GPU kernels: without a GPU agent, wait (default), run in gpu.js cpu mode, or reject at submit. */
  gpuFallback?: "wait" | "cpu" | "reject";
}

export interface WatchOptions {
  /** Only task outcomes (SUCCEEDED, FAILED, CANCELLED) and job snapshots. */
  finalOnly?: boolean;
}

export interface ClientOptions extends Credentials {
  /** Deadline for unary calls, ms. */
  timeoutMs?: number;
}

export class DistributeXClient {
  private readonly stub: DistributeXGrpcClient;
  private readonly timeoutMs: number;

  constructor(
    readonly address: string,
    options: ClientOptions = {},
  ) {
    const V1 = v1();
    this.stub = new V1.DistributeX(address, channelCredentials(resolveCredentials(address, options)), CHANNEL_OPTIONS) as unknown as DistributeXGrpcClient;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** A client for the scheduler named in a client profile (`distx init` / `distx up` write one). */
  static fromProfile(dir?: string, options: { timeoutMs?: number } = {}): DistributeXClient {
    const profile = readProfile(dir);
    if (!profile) throw new Error(`no client profile in ${profileDir(dir)}: run \`distx init\` or \`distx up\`, or pass the address, --ca and --token`);
    return new DistributeXClient(profile.scheduler, { ...options, ca: profile.caFile, token: readFileSync(profile.tokenFile, "utf8").trim() });
  }

  private call<Req, Res>(method: string, req: Req): Promise<Res> {
    return new Promise((resolve, reject) => {
      const fn = (this.stub as unknown as Record<string, (r: Req, m: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Res) => void) => void>)[method]!;
      fn.call(this.stub, req, { deadline: Date.now() + this.timeoutMs }, (err, res) => {
        if (err) reject(new DistributeXError(err.code, err.details || err.message, method));
        else resolve(res as Res);
      });
    });
  }

  /** Waits until the scheduler answers (or the deadline passes). */
  waitForReady(timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) =>
      this.stub.waitForReady(Date.now() + timeoutMs, (err) =>
        err ? reject(new Error(`scheduler at ${this.address} not reachable: ${err.message}`)) : resolve(),
      ),
    );
  }

  async registerKernel(module: Uint8Array, options: { name?: string; entry?: string; kind?: "wasm" | "gpu" } = {}): Promise<{ kernelId: string; alreadyRegistered: boolean }> {
    const kind = options.kind === "gpu" ? "KERNEL_KIND_GPU" : "KERNEL_KIND_WASM";
    return this.call("RegisterKernel", { module, name: options.name ?? "", entry: options.entry ?? "", kind, abi: "" });
  }

  /** Registers a built .wasm file; takes the name from its manifest when one sits beside it. */
  async registerKernelFile(wasmPath: string): Promise<{ kernelId: string; alreadyRegistered: boolean; name: string }> {
    const bytes = await readFile(wasmPath);
    // A gpu.js module built by `distx kernel build x.gpu.js` is <name>.gpu.json.
    const gpu = wasmPath.endsWith(".gpu.json");
    const ext = gpu ? /\.gpu\.json$/ : /\.wasm$/;
    let name = wasmPath.replace(/^.*\//, "").replace(ext, "");
    try {
      const manifest = JSON.parse(await readFile(wasmPath.replace(ext, ".manifest.json"), "utf8")) as { name?: string };
      if (manifest.name) name = manifest.name;
    } catch {
      // no manifest: the file name will do
    }
    return { ...(await this.registerKernel(bytes, { name, kind: gpu ? "gpu" : "wasm" })), name };
  }

  getKernel(kernelId: string): Promise<KernelInfo> {
    return this.call("GetKernel", { kernelId });
  }

  async submitJob(options: SubmitOptions): Promise<{ jobId: string; taskCount: number }> {
    const r = options.resources ?? {};
    return this.call("SubmitJob", {
      kernelId: options.kernelId,
      tasks: options.inputs.map((data) => ({ data })),
      priority: options.priority ?? 0,
      timeoutMs: options.timeoutMs ?? 0,
      maxAttempts: options.maxAttempts ?? 0,
      name: options.name ?? "",
      skipResultCache: options.skipResultCache ?? false,
      resources: { cores: r.cores ?? 0, memoryBytes: String(r.memoryBytes ?? 0), gpu: r.gpu ?? false, nodeSelector: r.nodeSelector ?? {} },
      gpuFallback: options.gpuFallback === "cpu" ? "GPU_FALLBACK_CPU" : options.gpuFallback === "reject" ? "GPU_FALLBACK_REJECT" : "GPU_FALLBACK_WAIT",
    });
  }

  getJob(jobId: string): Promise<Job> {
    return this.call("GetJob", { jobId });
  }

  async listJobs(limit = 50): Promise<Job[]> {
    return (await this.call<unknown, { jobs: Job[] }>("ListJobs", { limit })).jobs;
  }

  cancelJob(jobId: string): Promise<Job> {
    return this.call("CancelJob", { jobId });
  }

  async listNodes(includeDown = false): Promise<Node[]> {
    return (await this.call<unknown, { nodes: Node[] }>("ListNodes", { includeDown })).nodes;
  }

  /** All results of a job, fetched in pages, ordered by task index. */
  async getResults(jobId: string, pageSize = 1000): Promise<TaskResult[]> {
    const out: TaskResult[] = [];
    for (let offset = 0; ; offset += pageSize) {
      const page = await this.call<unknown, { results: TaskResult[] }>("GetResults", { jobId, offset, limit: pageSize });
      // Outputs arrive as views into the gRPC message at any byte offset; give each its own
      // buffer so callers can read it as a typed array (new Float32Array(output.buffer)).
      for (const r of page.results) out.push({ ...r, output: Buffer.from(new Uint8Array(r.output).buffer) });
      const job = await this.getJob(jobId);
      if (offset + pageSize >= job.taskCount) break;
    }
    return out;
  }

  /**
   * Streams a job's events: a job snapshot first, then task changes, ending when the job ends.
   * With finalOnly, only each task's outcome (and job snapshots) comes; outcomes the scheduler
   * sends together are yielded one event per task all the same.
   */
  async *watchJob(jobId: string, options: WatchOptions = {}): AsyncGenerator<JobEvent> {
    const stream = this.stub.WatchJob({ jobId, finalOnly: options.finalOnly ?? false });
    try {
      for await (const ev of stream as AsyncIterable<JobEvent>) {
        if (ev.tasks) for (const task of ev.tasks.items) yield { jobId: ev.jobId, atMs: ev.atMs, task, event: "task" } satisfies JobEvent;
        else yield ev;
      }
    } catch (err) {
      const e = err as grpc.ServiceError;
      if (typeof e.code === "number") throw new DistributeXError(e.code, e.details || e.message, "WatchJob");
      throw err;
    } finally {
      stream.cancel();
    }
  }

  /**
   * Streams the scheduler's alerts as they fire and resolve, until the caller stops iterating
   * (or `signal` aborts). With includeActive, alerts already firing come first.
   */
  async *watchAlerts(options: { includeActive?: boolean; signal?: AbortSignal } = {}): AsyncGenerator<Alert> {
    const stream = this.stub.WatchAlerts({ includeActive: options.includeActive ?? true });
    const abort = () => stream.cancel();
    options.signal?.addEventListener("abort", abort);
    try {
      for await (const a of stream as AsyncIterable<Alert>) yield a;
    } catch (err) {
      const e = err as grpc.ServiceError;
      if (e.code === grpc.status.CANCELLED && options.signal?.aborted) return;
      if (typeof e.code === "number") throw new DistributeXError(e.code, e.details || e.message, "WatchAlerts");
      throw err;
    } finally {
      options.signal?.removeEventListener("abort", abort);
      stream.cancel();
    }
  }

  /** Waits for a job to end, calling `onEvent` for every event; returns the final job. */
  async waitForJob(jobId: string, onEvent?: (ev: JobEvent) => void, options: WatchOptions = {}): Promise<Job> {
    let last: Job | undefined;
    for await (const ev of this.watchJob(jobId, options)) {
      onEvent?.(ev);
      if (ev.job) last = ev.job;
      if (last && TERMINAL_JOB_STATES.has(last.state)) return last;
    }
    // The stream ended without a final snapshot (e.g. the scheduler went away): ask directly.
    return this.getJob(jobId);
  }

  /** Submits, waits for the job to end and returns it with its results. */
  async run(options: SubmitOptions, onEvent?: (ev: JobEvent) => void): Promise<{ job: Job; results: TaskResult[] }> {
    const { jobId } = await this.submitJob(options);
    const job = await this.waitForJob(jobId, onEvent);
    return { job, results: await this.getResults(jobId) };
  }

  /** Admin: a join token for new agents and the CA pin they check the scheduler against. */
  createJoinToken(options: { ttlMs?: number; uses?: number; description?: string } = {}): Promise<{ token: string; caHash: string; expiresAtMs: number }> {
    return this.call("CreateJoinToken", { ttlMs: String(options.ttlMs ?? 0), uses: options.uses ?? 0, description: options.description ?? "" });
  }

  /** Admin: removes a node, revokes its certificate and closes its session. */
  removeNode(nodeId: string): Promise<{ wasConnected: boolean }> {
    return this.call("RemoveNode", { nodeId });
  }

  close(): void {
    this.stub.close();
  }
}
