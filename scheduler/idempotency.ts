// SubmitJob made idempotent by a client-chosen request id (as Temporal's requestId, Stripe's
// Idempotency-Key). The job id is derived from the request id, so every attempt of one request
// names the same job: a retry after a lost reply (deadline exceeded, scheduler restart, Redis
// down during submit) finds the job in memory or in the store and returns it, and a submission
// journaled twice to Kafka is adopted once (adopt skips a job id it already holds). The request's
// fingerprint is kept with the job, so reusing an id for a different request is refused.
import { createHash } from "node:crypto";
import { status } from "@grpc/grpc-js";
import { DistributeXError, invalidArgument } from "../common/errors.js";
import { backendError } from "./backends/errors.js";
import type { SchedulerCore, SubmitRequest } from "./core.js";
import { isTerminalJob } from "./model.js";
import { DEFAULT_TENANT } from "./auth/principal.js";
import { sha256Once } from "../common/hash.js";

const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

/**
 * job-<uuid shape> from the tenant and the request id: stable across attempts, schedulers and
 * restarts. The tenant is part of it, so one tenant can neither find nor claim another's ids.
 */
function jobIdForRequest(requestId: string, tenant: string = DEFAULT_TENANT): string {
  const h = createHash("sha256").update("distx-request-id\0").update(tenant).update("\0").update(requestId).digest("hex");
  // RFC 4122 layout, version 8 (custom), variant 10.
  return `job-${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The fields of a request, other than its data, that change what runs (not the request id itself). */
function smallFields(req: SubmitRequest): string {
  const n = req.needs;
  const nodeSelector = Object.entries(n.nodeSelector ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([
    req.kernelId, req.priority, req.timeoutMs, req.maxAttempts, req.name, req.skipCache ?? false,
    req.gpuFallback ?? "GPU_FALLBACK_WAIT", req.unschedulable ?? "UNSCHEDULABLE_WAIT",
    n.cores ?? 0, n.memoryBytes ?? 0, n.gpu ?? false, nodeSelector, req.inputs.length,
  ]);
}

const FINGERPRINT_V2 = "v2:";

/**
 * sha256 over every field of the request that changes what runs: the small fields, then each
 * input's length and sha256. The inputs' digests are computed once (sha256Once) and reused for
 * blob references and result-cache keys, so no input is hashed twice.
 */
export function requestFingerprint(req: SubmitRequest): string {
  const h = createHash("sha256").update(smallFields(req));
  for (const input of req.inputs) h.update(`${input.byteLength}:${sha256Once(input)};`);
  for (const shared of req.sharedInputs ?? []) h.update(`shared:${JSON.stringify(shared.name)}:${shared.data.byteLength}:${sha256Once(shared.data)};`);
  return FINGERPRINT_V2 + h.digest("hex");
}

/** The fingerprint as releases before "v2:" wrote it (over the bytes), for jobs they recorded. */
export function legacyFingerprint(req: SubmitRequest): string {
  const h = createHash("sha256").update(smallFields(req));
  for (const input of req.inputs) h.update(String(input.byteLength)).update(":").update(input);
  for (const shared of req.sharedInputs ?? []) h.update(`shared:${shared.name}:${shared.data.byteLength}:`).update(shared.data);
  return h.digest("hex");
}

/** Whether a recorded fingerprint is this request's (one recorded before v2 is recomputed the old way). */
export function sameRequest(recorded: string, fingerprint: string, req: SubmitRequest): boolean {
  if (recorded === fingerprint) return true;
  return recorded !== "" && !recorded.startsWith(FINGERPRINT_V2) && recorded === legacyFingerprint(req);
}

export interface SubmitResult {
  jobId: string;
  taskCount: number;
}

const alreadyExists = (msg: string) => new DistributeXError(status.ALREADY_EXISTS, msg);

export class IdempotentSubmitter {
  /** One attempt per request id at a time: a retry that overtakes a slow first attempt waits for it. */
  private readonly inflight = new Map<string, Promise<SubmitResult>>();

  constructor(private readonly core: SchedulerCore) {}

  async submit(req: SubmitRequest): Promise<SubmitResult> {
    const requestId = req.requestId;
    if (!requestId) {
      const job = await this.core.submit(req);
      return { jobId: job.id, taskCount: job.tasks.length };
    }
    if (!REQUEST_ID.test(requestId)) throw invalidArgument("request_id must be 1 to 128 printable ASCII characters without spaces");
    const fingerprint = requestFingerprint(req);
    const key = `${req.tenant ?? DEFAULT_TENANT}\0${requestId}`;
    for (;;) {
      const running = this.inflight.get(key);
      if (!running) break;
      await running.catch(() => undefined);
    }
    const attempt = this.once({ ...req, requestId, requestFingerprint: fingerprint, jobId: jobIdForRequest(requestId, req.tenant) }, fingerprint);
    this.inflight.set(key, attempt);
    try {
      return await attempt;
    } finally {
      if (this.inflight.get(key) === attempt) this.inflight.delete(key);
    }
  }

  private async once(req: SubmitRequest & { requestId: string; jobId: string }, fingerprint: string): Promise<SubmitResult> {
    const known = await this.known(req.jobId);
    if (known) {
      if (!sameRequest(known.fingerprint, fingerprint, req)) {
        throw alreadyExists(`request_id ${JSON.stringify(req.requestId)} was already used for job ${req.jobId} with a different request; not retryable: use a new request_id for a new job`);
      }
      return { jobId: req.jobId, taskCount: known.taskCount };
    }
    const job = await this.core.submit(req);
    return { jobId: job.id, taskCount: job.tasks.length };
  }

  /** The job of this id, from memory or (finished, or held by the store only) from the store. */
  private async known(jobId: string): Promise<{ fingerprint: string; taskCount: number } | undefined> {
    const inMemory = this.core.peekJob(jobId);
    if (inMemory) return { fingerprint: inMemory.requestFingerprint ?? "", taskCount: inMemory.tasks.length };
    let meta: string | undefined;
    try {
      meta = await this.core.store.getJobMeta(jobId);
    } catch (err) {
      throw backendError("could not look up the request id", err);
    }
    if (!meta) return undefined;
    const m = JSON.parse(meta) as { requestFingerprint?: string; counts?: Record<string, number>; state?: string };
    // Recorded but not held here (a store write that failed half way): resume it like a restart would.
    if (!isTerminalJob((m.state ?? "") as never)) await this.core.restore();
    const taskCount = Object.values(m.counts ?? {}).reduce((s, c) => s + c, 0);
    return { fingerprint: m.requestFingerprint ?? "", taskCount };
  }
}
