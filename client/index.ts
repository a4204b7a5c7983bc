// The typed DistributeX client. Wraps the generated gRPC stubs with promises, async
// iteration for streams, and errors that carry the gRPC status code.
import { readFile } from "node:fs/promises";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { statusName } from "../common/errors.js";
import { CHANNEL_OPTIONS, v1 } from "../common/proto.js";
import type { Alert, DistributeXGrpcClient, Job, JobEvent, KernelInfo, Node, TaskResult, TokenInfo } from "../common/types.js";
import { TERMINAL_JOB_STATES } from "../common/types.js";
import { clientDataDir, readProfile, resolveToken } from "./credentials.js";

export type { Alert, Job, JobEvent, KernelInfo, Node, TaskResult, TokenInfo };

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

export interface ClientOptions {
  /** Deadline for unary calls, ms. */
  timeoutMs?: number;
  /**
   * API token sent as `authorization: Bearer <token>`. Absent: found as client/credentials.ts
   * says (env DISTX_TOKEN, <DISTX_HOME or ~/.distx>/client.json, …); null: send none.
   */
  token?: string | null;
  /** A file holding the token (one line). */
  tokenFile?: string;
}

export class DistributeXClient {
  private readonly stub: DistributeXGrpcClient;
  private readonly timeoutMs: number;
  private readonly token: string | undefined;

  constructor(
    readonly address: string,
    options: ClientOptions = {},
  ) {
    const V1 = v1();
    this.stub = new V1.DistributeX(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS) as unknown as DistributeXGrpcClient;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.token = resolveToken(address, { ...(options.token !== undefined ? { token: options.token } : {}), ...(options.tokenFile ? { tokenFile: options.tokenFile } : {}) });
  }

  /** A client for the cluster of a profile dir (default $DISTX_HOME or ~/.distx): its scheduler and token. */
  static fromProfile(dir = clientDataDir(), options: ClientOptions = {}): DistributeXClient {
    const profile = readProfile(dir);
    if (!profile?.scheduler) throw new Error(`no client profile with a scheduler address in ${dir}/client.json (written by distx up)`);
    const tokenFile = profile.tokenFile ? path.resolve(dir, profile.tokenFile) : path.join(dir, "admin.token");
    return new DistributeXClient(profile.scheduler, { tokenFile, ...options });
  }

  /** The metadata every call carries: the bearer token, when there is one. */
  private metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.token) md.set("authorization", `Bearer ${this.token}`);
    return md;
  }

  private call<Req, Res>(method: string, req: Req): Promise<Res> {
    return new Promise((resolve, reject) => {
      const fn = (this.stub as unknown as Record<string, (r: Req, md: grpc.Metadata, m: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Res) => void) => void>)[method]!;
      fn.call(this.stub, req, this.metadata(), { deadline: Date.now() + this.timeoutMs }, (err, res) => {
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

  /** Removes this tenant's registration of a kernel (admin: `tenant`'s); FAILED_PRECONDITION while a job of it runs. */
  deleteKernel(kernelId: string, tenant = ""): Promise<{ contentDeleted: boolean }> {
    return this.call("DeleteKernel", { kernelId, tenant });
  }

  /** Admin: a new API token; its text is in the answer only. */
  createToken(options: { role: "read" | "submit" | "admin"; tenant?: string; ttlMs?: number; description?: string }): Promise<{ token: string; info: TokenInfo }> {
    return this.call("CreateToken", { role: options.role, tenant: options.tenant ?? "", ttlMs: options.ttlMs ?? 0, description: options.description ?? "" });
  }

  async listTokens(includeRevoked = false): Promise<TokenInfo[]> {
    return (await this.call<unknown, { tokens: TokenInfo[] }>("ListTokens", { includeRevoked })).tokens;
  }

  revokeToken(id: string): Promise<TokenInfo> {
    return this.call("RevokeToken", { id });
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
    const stream = this.stub.WatchJob({ jobId, finalOnly: options.finalOnly ?? false }, this.metadata());
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
    const stream = this.stub.WatchAlerts({ includeActive: options.includeActive ?? true }, this.metadata());
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

  close(): void {
    this.stub.close();
  }
}
