// The typed DistributeX client. Wraps the generated gRPC stubs with promises, async
// iteration for streams, and errors that carry the gRPC status code.
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { DistributeXError } from "../common/errors.js";
import { channelFor, clientDataDir, readProfile, resolveClusterCredentials } from "./credentials.js";
import { CHANNEL_OPTIONS, v1 } from "../common/proto.js";
import type { Alert, DistributeXGrpcClient, Job, JobEvent, KernelInfo, Node, TaskResult, TokenInfo } from "../common/types.js";
import { followJob, lastJob, type FollowLink, type WatchOptions } from "./job-stream.js";
import type { ClientOptions, SubmitOptions } from "./options.js";
import { backoffDelay, isSafeToRetry, resolveRetry, type RetryOptions } from "./retry.js";
import { fetchResultOutputOnce } from "./result-output.js";
import { STREAM_SUBMIT_ABOVE_BYTES, STREAM_SUBMIT_ABOVE_TASKS, submitStreamMessages } from "./submit-stream.js";

export type { Alert, Job, JobEvent, KernelInfo, Node, TaskResult, TokenInfo };
export type { ClientOptions, RetryOptions, SubmitOptions, WatchOptions };

/** What every call rejects with: the gRPC status, its details and the RPC (common/errors.ts, shared with the scheduler). */
export { DistributeXError };

/** Calls that change nothing, or nothing more when repeated; SubmitJob only with a request id. */
const IDEMPOTENT = new Set(["RegisterKernel", "GetKernel", "GetJob", "ListJobs", "GetResults", "GetResultOutput", "ListNodes", "CancelJob", "SubmitJob"]);

export class DistributeXClient {
  /** One stub per address ("host:port[,host:port…]": an active scheduler and its standbys). */
  private readonly stubs: DistributeXGrpcClient[];
  private current = 0;
  private readonly timeoutMs: number;
  private readonly retry: Required<RetryOptions> | undefined;
  private closed = false;
  private readonly token: string | undefined;
  /** What a followed job stream needs of this client (client/job-stream.ts). */
  private readonly link: FollowLink;

  constructor(
    readonly address: string,
    options: ClientOptions = {},
  ) {
    const V1 = v1();
    // Every address is one cluster (an active scheduler and its standbys): one CA, one token.
    const addresses = address.split(",").map((a) => a.trim());
    const resolved = resolveClusterCredentials(addresses, options);
    this.token = resolved.token ?? undefined;
    this.stubs = addresses.map((a) => {
      const { credentials, options: tlsOptions } = channelFor(a, resolved);
      return new V1.DistributeX(a, credentials, { ...CHANNEL_OPTIONS, ...tlsOptions }) as unknown as DistributeXGrpcClient;
    });
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.retry = resolveRetry(options.retry);
    this.link = { retry: this.retry, isClosed: () => this.closed, failover: () => this.failover() };
  }

  /** A client for the cluster of a profile dir (default $DISTX_HOME or ~/.distx): its scheduler and token. */
  static fromProfile(dir = clientDataDir(), options: ClientOptions = {}): DistributeXClient {
    const profile = readProfile(dir);
    if (!profile?.scheduler) throw new Error(`no client profile with a scheduler address in ${dir}/client.json (written by distx up)`);
    const tokenFile = profile.tokenFile ? path.resolve(dir, profile.tokenFile) : path.join(dir, "admin.token");
    return new DistributeXClient(profile.scheduler, { tokenFile, ...(profile.caFile ? { ca: path.resolve(dir, profile.caFile) } : {}), ...options });
  }

  /** The metadata every call carries: the bearer token, when there is one. */
  private metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.token) md.set("authorization", `Bearer ${this.token}`);
    return md;
  }

  private get stub(): DistributeXGrpcClient {
    return this.stubs[this.current % this.stubs.length]!;
  }

  /** After a failure that may mean "not this scheduler": the next address (a standby may be active now). */
  private failover(): void {
    if (this.stubs.length > 1) this.current = (this.current + 1) % this.stubs.length;
  }

  private attempt<Req, Res>(method: string, req: Req): Promise<Res> {
    return new Promise((resolve, reject) => {
      const stub = this.stub;
      const fn = (stub as unknown as Record<string, (r: Req, md: grpc.Metadata, m: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Res) => void) => void>)[method]!;
      fn.call(stub, req, this.metadata(), { deadline: Date.now() + this.timeoutMs }, (err, res) => {
        if (err) {
          const pushback = err.metadata?.get("grpc-retry-pushback-ms")[0];
          reject(new DistributeXError(err.code, err.details || err.message, method, pushback !== undefined && !(Number(pushback) >= 0)));
        } else resolve(res as Res);
      });
    });
  }

  /** One attempt of SubmitJobStream: the header, then the tasks in chunks of about a MiB. */
  private attemptSubmitStream(header: Record<string, unknown>, inputs: Uint8Array[], shared: { name: string; data: Uint8Array }[]): Promise<{ jobId: string; taskCount: number }> {
    return new Promise((resolve, reject) => {
      const stream = this.stub.SubmitJobStream(this.metadata(), { deadline: Date.now() + this.timeoutMs }, (err, res) => {
        if (err) {
          const pushback = err.metadata?.get("grpc-retry-pushback-ms")[0];
          reject(new DistributeXError(err.code, err.details || err.message, "SubmitJobStream", pushback !== undefined && !(Number(pushback) >= 0)));
        } else resolve(res as { jobId: string; taskCount: number });
      });
      const messages = submitStreamMessages(header, inputs, shared);
      // Written as flow control allows: the client never buffers the whole job a second time.
      const pump = () => {
        for (let next = messages.next(); !next.done; next = messages.next()) {
          if (!stream.write(next.value)) return void stream.once("drain", pump);
        }
        stream.end();
      };
      pump();
    });
  }

  private async call<Req, Res>(method: string, req: Req, attempt = () => this.attempt<Req, Res>(method, req)): Promise<Res> {
    const retry = IDEMPOTENT.has(method) ? this.retry : undefined;
    const until = Date.now() + (retry?.deadlineMs ?? 0);
    for (let n = 0; ; n++) {
      try {
        return await attempt();
      } catch (err) {
        const e = err as DistributeXError;
        const delay = retry ? backoffDelay(retry, n) : 0;
        if (!retry || this.closed || !isSafeToRetry(e.code) || Date.now() + delay > until) throw err;
        // A scheduler that is shutting down says "not here": only another address may take it.
        if (e.noRetryHere && this.stubs.length === 1) throw err;
        if (e.code === grpc.status.UNAVAILABLE) this.failover();
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Waits until the scheduler answers (or the deadline passes). */
  waitForReady(timeoutMs = 10_000): Promise<void> {
    // Any of the addresses will do (a standby does not listen until it is the active one).
    return Promise.any(
      this.stubs.map(
        (stub, i) =>
          new Promise<void>((resolve, reject) =>
            stub.waitForReady(Date.now() + timeoutMs, (err) => {
              if (err) return reject(err);
              this.current = i;
              resolve();
            }),
          ),
      ),
    ).catch((err: AggregateError) => {
      throw new Error(`scheduler at ${this.address} not reachable: ${(err.errors[0] as Error)?.message ?? err.message}`);
    });
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

  submitJob(options: SubmitOptions): Promise<{ jobId: string; taskCount: number }> {
    return this.sendSubmit(this.submitRequest(options), options.inputs);
  }

  /** SubmitJob with a request already built (inline), or SubmitJobStream (a big job). */
  private sendSubmit(prepared: ReturnType<DistributeXClient["submitRequest"]>, inputs: Uint8Array[]): Promise<{ jobId: string; taskCount: number }> {
    const { request, shared, inline } = prepared;
    if (inline) return this.call("SubmitJob", request);
    const { tasks: _, ...header } = request;
    return this.call("SubmitJob", request, () => this.attemptSubmitStream({ ...header, tasks: [] }, inputs, shared));
  }

  /** The SubmitJob request for these options, and whether it goes inline (else as SubmitJobStream). */
  private submitRequest(options: SubmitOptions) {
    const r = options.resources ?? {};
    const request = {
      // Every attempt of this submit carries the same id: a retry can never run the job twice.
      requestId: options.requestId ?? randomUUID(),
      unschedulable: options.unschedulable === "fail" ? ("UNSCHEDULABLE_FAIL" as const) : ("UNSCHEDULABLE_WAIT" as const),
      kernelId: options.kernelId,
      tasks: options.inputs.map((data) => ({ data })),
      priority: options.priority ?? 0,
      timeoutMs: options.timeoutMs ?? 0,
      maxAttempts: options.maxAttempts ?? 0,
      name: options.name ?? "",
      skipResultCache: options.skipResultCache ?? false,
      resources: { cores: r.cores ?? 0, memoryBytes: String(r.memoryBytes ?? 0), gpu: r.gpu ?? false, nodeSelector: r.nodeSelector ?? {} },
      gpuFallback: options.gpuFallback === "cpu" ? ("GPU_FALLBACK_CPU" as const) : options.gpuFallback === "reject" ? ("GPU_FALLBACK_REJECT" as const) : ("GPU_FALLBACK_WAIT" as const),
    };
    // A big job goes as a stream of chunks: no one message (here or at the scheduler) holds it all.
    const shared = options.sharedInputs ?? [];
    const bytes = options.inputs.reduce((sum, b) => sum + b.byteLength, 0) + shared.reduce((sum, s) => sum + s.data.byteLength, 0);
    const inline = bytes <= STREAM_SUBMIT_ABOVE_BYTES && options.inputs.length <= STREAM_SUBMIT_ABOVE_TASKS;
    return { request: inline ? { ...request, sharedInputs: shared.map((s) => ({ name: s.name, data: s.data })) } : request, shared, inline };
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

  /**
   * All results of a job, ordered by task index, fetched page by page: the scheduler bounds each
   * page in bytes and names the next with a token.
   */
  async getResults(jobId: string): Promise<TaskResult[]> {
    const out: TaskResult[] = [];
    let pageToken = "";
    do {
      const page = await this.call<unknown, { results: TaskResult[]; nextPageToken: string }>("GetResults", { jobId, offset: 0, limit: 0, pageToken });
      // Outputs arrive as views into the gRPC message at any byte offset; give each its own
      // buffer so callers can read it as a typed array (new Float32Array(output.buffer)).
      for (const r of page.results) {
        // An output stored by reference is read by itself, in chunks (client/result-output.ts).
        const ref = r.outputRef;
        const output = ref
          ? await this.call("GetResultOutput", { jobId, taskIndex: r.taskIndex }, () => fetchResultOutputOnce(this.stub, this.metadata(), { jobId, taskIndex: r.taskIndex }, ref, this.timeoutMs))
          : Buffer.from(new Uint8Array(r.output).buffer);
        out.push({ ...r, output });
      }
      pageToken = page.nextPageToken;
    } while (pageToken);
    return out;
  }

  /**
   * Streams a job's events: a job snapshot first, then task changes, ending when the job ends.
   * With finalOnly, only each task's outcome (and job snapshots) comes; outcomes the scheduler
   * sends together are yielded one event per task all the same.
   */
  watchJob(jobId: string, options: WatchOptions = {}): AsyncGenerator<JobEvent> {
    return followJob((resume, seen) => this.stub.WatchJob({ jobId, finalOnly: options.finalOnly ?? false, resume, seenOutcomes: resume ? seen : Buffer.alloc(0) }, this.metadata()), options, "WatchJob", this.link);
  }

  /**
   * Submits and waits on one call (RunJob: one call and one round trip less than SubmitJob then
   * WatchJob), with the events of a final-only watch; returns the final job. A stream that breaks
   * goes on as a resumed WatchJob (or, before the job was named, RunJob again with the same request
   * id, which submits nothing new). Big jobs, and schedulers without RunJob, take the two calls.
   */
  async runJob(options: SubmitOptions, onEvent?: (ev: JobEvent) => void): Promise<Job> {
    const prepared = this.submitRequest(options);
    const { request, inline } = prepared;
    if (!inline) return this.waitForJob((await this.sendSubmit(prepared, options.inputs)).jobId, onEvent, { finalOnly: true });
    let jobId = "";
    const open = (resume: boolean, seen: Buffer) =>
      jobId ? this.stub.WatchJob({ jobId, finalOnly: true, resume, seenOutcomes: resume ? seen : Buffer.alloc(0) }, this.metadata()) : this.stub.RunJob(request, this.metadata());
    try {
      const last = await lastJob(followJob(open, { finalOnly: true }, "RunJob", this.link), (ev) => {
        jobId ||= ev.jobId;
        onEvent?.(ev);
      });
      return last ?? (await this.getJob(jobId));
    } catch (err) {
      // A scheduler from before RunJob: the same request (same id) by the two calls.
      if (!jobId && err instanceof DistributeXError && err.code === grpc.status.UNIMPLEMENTED) {
        return this.waitForJob((await this.sendSubmit(prepared, options.inputs)).jobId, onEvent, { finalOnly: true });
      }
      throw err;
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
    // The stream ended without a final snapshot (e.g. the scheduler went away): ask directly.
    return (await lastJob(this.watchJob(jobId, options), (ev) => onEvent?.(ev))) ?? this.getJob(jobId);
  }

  /** Submits, waits for the job to end (runJob: events of a final-only watch) and returns it with its results. */
  async run(options: SubmitOptions, onEvent?: (ev: JobEvent) => void): Promise<{ job: Job; results: TaskResult[] }> {
    const job = await this.runJob(options, onEvent);
    return { job, results: await this.getResults(job.jobId) };
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
    this.closed = true;
    for (const s of this.stubs) s.close();
  }
}
