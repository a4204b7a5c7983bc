// Submission: a client's job (SubmitJob) or a record read back from the submissions log is
// checked, built into a job record, journaled (with a durable queue), recorded in the store,
// answered from the result cache where it can be, and its remaining tasks queued.
import { randomUUID } from "node:crypto";
import { DistributeXError, failedPrecondition, notFound, shuttingDown } from "../../common/errors.js";
import type { SubmissionRecord } from "../backends/bus.js";
import { resultCacheKey } from "../backends/codec.js";
import { backendError } from "../backends/errors.js";
import { emptyCounts, isTerminalJob, type JobRecord, type ResourceNeeds } from "../model.js";
import { explainFeasibility } from "../placement/feasibility.js";
import { gpuRejection } from "../placement/gpu.js";
import { checkKernelId, checkLoggedSubmission, checkSubmitFields, rejectionReason, type SubmitFields } from "../submit-validation.js";
import type { CoreContext, WakeDispatch } from "./context.js";
import { jobMetaJson } from "./proto.js";
import type { TaskStates } from "./task-states.js";
import { planBlobs, storeBlobs } from "./blob-inputs.js";

export interface SubmitRequest extends SubmitFields {
  gpuFallback?: ResourceNeeds["gpuFallback"];
  /** Run every task even when the result cache holds an identical one. */
  skipCache?: boolean;
  /** Set by scheduler/idempotency.ts: the job id derived from the client's request id, and the request's fingerprint. */
  jobId?: string;
  requestId?: string;
  requestFingerprint?: string;
  unschedulable?: JobRecord["unschedulable"];
  /** Whose job: the submitting token's tenant and id. */
  tenant?: string;
  tokenId?: string;
  /** Inputs every task reads (stored once, fetched once per agent). */
  sharedInputs?: { name: string; data: Buffer }[];
}

/** Kernel kinds remembered (a kernel is immutable, addressed by its hash). */
const KERNEL_KINDS_KEPT = 4096;

export class Submissions {
  /** Kinds of kernels seen: a kernel is immutable (addressed by its hash), so one store read each is enough. */
  private readonly kernelKinds = new Map<string, ResourceNeeds["kind"]>();

  constructor(
    private readonly ctx: CoreContext,
    private readonly states: Pick<TaskStates, "finishTask">,
    private readonly wakeDispatch: WakeDispatch,
    /** Whether new jobs are taken: the daemon's lifecycle answers (scheduler/lifecycle.ts). */
    private readonly acceptsJobs: () => boolean,
  ) {}

  private async kernelKind(kernelId: string): Promise<ResourceNeeds["kind"] | undefined> {
    const known = this.kernelKinds.get(kernelId);
    if (known) return known;
    const kernel = await this.ctx.store.getKernel(kernelId);
    if (!kernel) return undefined;
    if (this.kernelKinds.size >= KERNEL_KINDS_KEPT) this.kernelKinds.delete(this.kernelKinds.keys().next().value as string);
    this.kernelKinds.set(kernelId, kernel.kind);
    return kernel.kind;
  }

  async submit(req: SubmitRequest): Promise<JobRecord> {
    const { config, registry, settings, table } = this.ctx;
    if (!this.acceptsJobs()) throw shuttingDown("the scheduler is shutting down and takes no new jobs");
    // The same checks as a record read back from the submissions log (submit-validation.ts).
    checkKernelId(req.kernelId);
    const kind = await this.kernelKind(req.kernelId);
    if (!kind) throw notFound(`unknown kernel ${req.kernelId}: register it with RegisterKernel first`);
    const totalBytes = checkSubmitFields(req, config);
    const needs: ResourceNeeds = {
      cores: req.needs.cores ?? 0,
      memoryBytes: req.needs.memoryBytes ?? 0,
      gpu: req.needs.gpu ?? false,
      nodeSelector: req.needs.nodeSelector ?? {},
      kind,
      gpuFallback: req.gpuFallback ?? "GPU_FALLBACK_WAIT",
    };
    const noGpu = gpuRejection(needs, registry.ready());
    if (noGpu) throw failedPrecondition(noGpu);
    if (req.unschedulable === "UNSCHEDULABLE_FAIL") {
      const why = explainFeasibility(needs, registry.all().filter((n) => n.state !== "NODE_STATE_DOWN"));
      if (why.eligible === 0) throw failedPrecondition(`no node could ever take this job: ${why.reason}; not retryable until a node that fits joins (or submit with unschedulable=WAIT)`);
    }
    const id = req.jobId ?? `job-${randomUUID()}`;
    // Big inputs and shared inputs go by reference: hashed now, stored once the job is admitted.
    const plan = planBlobs(req.inputs, req.sharedInputs, config.inputByRefBytes);
    const rec: SubmissionRecord = {
      jobId: id,
      submittedAtMs: Date.now(),
      kernelId: req.kernelId,
      priority: req.priority,
      timeoutMs: req.timeoutMs,
      maxAttempts: req.maxAttempts,
      name: req.name,
      skipCache: req.skipCache ?? false,
      needs: { cores: needs.cores, memoryBytes: needs.memoryBytes, gpu: needs.gpu, nodeSelector: needs.nodeSelector, gpuFallback: needs.gpuFallback },
      inputs: plan.inputs,
      ...(plan.inputRefs ? { inputRefs: plan.inputRefs } : {}),
      ...(plan.sharedInputs ? { sharedInputs: plan.sharedInputs } : {}),
      ...(req.requestId ? { requestId: req.requestId, requestFingerprint: req.requestFingerprint ?? "" } : {}),
      ...(req.unschedulable === "UNSCHEDULABLE_FAIL" ? { unschedulable: req.unschedulable } : {}),
      ...(req.tenant ? { tenant: req.tenant } : {}),
      ...(req.tokenId ? { tokenId: req.tokenId } : {}),
    };
    const job = this.buildJob(rec, kind);
    settings.admit?.(job);
    table.add(job);
    if (plan.blobs.size > 0) {
      try {
        await storeBlobs(this.ctx.store, id, plan.blobs);
      } catch (err) {
        table.forget(id);
        if (err instanceof DistributeXError) throw err; // the store is full: RESOURCE_EXHAUSTED, retry later
        throw backendError("could not store the job's inputs", err);
      }
    }
    const release = () => (plan.blobs.size > 0 ? this.ctx.store.releaseBlobs(id).catch(() => undefined) : undefined);
    if (settings.journal) {
      try {
        await settings.journal(rec);
      } catch (err) {
        table.forget(id);
        await release();
        throw backendError("could not write the submission durably", err);
      }
    }
    try {
      await this.accept(job, rec.inputs, rec.inputRefs);
    } catch (err) {
      // Not recorded: forget it here, so a retry (same request id, same job id) records it afresh
      // and a journaled copy can still be adopted; nothing waits on a job that will never run.
      if (job.tasks.every((t) => t.state === "TASK_STATE_PENDING")) table.forget(id);
      if (!settings.journal) await release(); // a journaled copy still needs its blobs to be adopted
      throw backendError("could not record the job", err);
    }
    this.ctx.log.info({ event: "job_submitted", jobId: id, tasks: job.tasks.length, kernelId: req.kernelId, bytes: totalBytes }, "job submitted");
    return job;
  }

  /**
   * A submission read back from the durable log. Jobs this scheduler already holds, or that the
   * store already recorded, are skipped; anything else (accepted by a scheduler that died before
   * recording it) is recorded and queued now.
   */
  async adopt(rec: SubmissionRecord): Promise<void> {
    const { config, store, table, log } = this.ctx;
    // Anyone who can write to the log must get no further than a SubmitJob call: a record that
    // fails SubmitJob's checks (or names an unknown kernel) is dropped and counted, never run.
    let kind: ResourceNeeds["kind"] | undefined;
    try {
      checkLoggedSubmission(rec, config);
      if (table.has(rec.jobId) || (await store.getJobMeta(rec.jobId)) !== undefined) return;
      kind = await this.kernelKind(rec.kernelId);
      if (!kind) throw notFound(`unknown kernel ${rec.kernelId}`);
    } catch (err) {
      if (!(err instanceof DistributeXError)) throw err; // the store failed: not consumed, retried
      this.ctx.events.emit("record_rejected", "submissions", rejectionReason(err));
      log.warn({ event: "submission_rejected", reason: rejectionReason(err), err: err.message }, "refused a submissions-log record");
      return;
    }
    const job = this.buildJob(rec, kind);
    table.add(job);
    try {
      await this.accept(job, rec.inputs, rec.inputRefs);
    } catch (err) {
      // Not recorded: forget it, so the record's redelivery adopts it again rather than skipping it.
      if (job.tasks.every((t) => t.state === "TASK_STATE_PENDING")) table.forget(job.id);
      throw err;
    }
    log.info({ event: "job_adopted", jobId: job.id, tasks: job.tasks.length }, "job recovered from the submission log");
  }

  private buildJob(rec: SubmissionRecord, kind: ResourceNeeds["kind"]): JobRecord {
    const { config } = this.ctx;
    return {
      id: rec.jobId,
      name: rec.name,
      kernelId: rec.kernelId,
      state: "JOB_STATE_PENDING",
      priority: rec.priority,
      timeoutMs: rec.timeoutMs || config.defaultTaskTimeoutMs,
      maxAttempts: rec.maxAttempts || config.defaultMaxAttempts,
      needs: { ...rec.needs, kind },
      submittedAtMs: rec.submittedAtMs,
      startedAtMs: 0,
      finishedAtMs: 0,
      retries: 0,
      counts: { ...emptyCounts(), TASK_STATE_PENDING: rec.inputs.length },
      tasks: rec.inputs.map((input, index) => {
        const ref = rec.inputRefs?.[index];
        return {
          index,
          state: "TASK_STATE_PENDING",
          attempt: 1,
          nodeId: "",
          input: ref ? undefined : input,
          ...(ref ? { inputRef: ref } : {}),
          runMs: 0,
          queuedAtMs: rec.submittedAtMs,
        };
      }),
      ...(rec.skipCache ? { skipCache: true } : {}),
      ...(rec.requestId ? { requestId: rec.requestId, requestFingerprint: rec.requestFingerprint ?? "" } : {}),
      ...(rec.unschedulable ? { unschedulable: rec.unschedulable } : {}),
      ...(rec.tenant ? { tenant: rec.tenant } : {}),
      ...(rec.tokenId ? { tokenId: rec.tokenId } : {}),
      inputBytes:
        rec.inputs.reduce((s, b) => s + b.byteLength, 0) +
        (rec.inputRefs ?? []).reduce((s, r) => s + (r?.sizeBytes ?? 0), 0) +
        (rec.sharedInputs ?? []).reduce((s, r) => s + r.ref.sizeBytes, 0),
      ...(rec.sharedInputs ? { sharedInputs: rec.sharedInputs } : {}),
    };
  }

  /** Records a new job (inputs and metadata at once), answers what the cache can, and queues the rest. */
  private async accept(job: JobRecord, inputs: Buffer[], inputRefs: SubmissionRecord["inputRefs"]): Promise<void> {
    try {
      await this.ctx.store.putJob(job.id, inputs, jobMetaJson(job), inputRefs);
    } catch (err) {
      // Not recorded, so not ours: a job left in the table would never run and drain would wait on it.
      this.ctx.table.forget(job.id);
      throw backendError("could not record the job in the state store", err);
    }
    this.ctx.events.emit("job_submitted", job);
    await this.answerFromCache(job);
    if (!isTerminalJob(job.state)) {
      this.ctx.queue.pushJob(job.id, job.priority, job.tasks.filter((t) => t.state === "TASK_STATE_PENDING").map((t) => t.index));
      this.wakeDispatch();
    }
  }

  private async answerFromCache(job: JobRecord): Promise<void> {
    if (!this.ctx.settings.resultCache || job.skipCache) return;
    const pending = job.tasks.filter((t) => t.state === "TASK_STATE_PENDING" && t.input);
    // The cache only saves work: when it cannot be read, every task runs.
    const hits = await this.ctx.store.getCachedResults(pending.map((t) => resultCacheKey(job.kernelId, t.index + 1, t.input!))).catch((err: Error) => {
      this.ctx.log.warn({ event: "result_cache_unavailable", jobId: job.id, err: err.message }, "result cache unreadable; running every task");
      return [] as (Buffer | undefined)[];
    });
    for (let i = 0; i < pending.length; i++) {
      const output = hits[i];
      const task = pending[i]!;
      if (!output || task.state !== "TASK_STATE_PENDING") continue;
      this.ctx.counters.cacheHits++;
      this.ctx.events.emit("result_cache_hit", 1);
      await this.states.finishTask(job, task, { state: "TASK_STATE_SUCCEEDED", output, from: { nodeId: "result-cache", attempt: task.attempt, runMs: 0 } });
    }
  }
}
