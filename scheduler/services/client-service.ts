// The client-facing gRPC service (distributex.v1.DistributeX).
import type * as grpc from "@grpc/grpc-js";
import { compileWasmKernel, KernelAbiError, WASM_ABI, ABI_EXPORTS } from "../../common/kernel-abi.js";
import { failedPrecondition, invalidArgument, notFound, toServiceError } from "../../common/errors.js";
import { isKernelId, sha256Hex } from "../../common/hash.js";
import { taskErrorProto } from "../../common/task-errors.js";
import type { DistributeXHandlers, JobEventIn, SubmitJobRequest, TaskEventIn } from "../../common/types.js";
import { submitJobStream, type SubmitLimits } from "./submit-stream.js";
import { toJobProto, type SchedulerCore } from "../core.js";
import { isTerminalJob, isTerminalTask, type JobRecord } from "../model.js";
import type { StoredKernel } from "../backends/types.js";
import { registerGpuKernel } from "./gpu-kernels.js";
import { IdempotentSubmitter } from "../idempotency.js";
import type { AuthContext } from "../auth/authenticate.js";
import { callerOf, scopeOf, type Scope } from "../auth/policy.js";
import type { TenantQuotas } from "../auth/quotas.js";
import { DEFAULT_TENANT } from "../auth/principal.js";
import { createToken, listTokens, revokeToken } from "./token-service.js";
import { resultsPage } from "./results-pages.js";
import { resultOutputHandler } from "./output-service.js";
import { streamJobEvents, withReason } from "./watch-job.js";

const MAX_KERNEL_BYTES = 64 * 1024 * 1024;

/** Wraps an async unary handler so every throw becomes a gRPC status with its message. */
function unary<Req, Res>(fn: (req: Req, scope: Scope) => Promise<Res>) {
  return (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => {
    Promise.resolve()
      .then(() => fn(call.request, scopeOf(callerOf(call))))
      .then(
      (res) => callback(null, res),
      (err) => callback(toServiceError(err)),
    );
  };
}

export function kernelInfo(k: StoredKernel) {
  return {
    kernelId: k.kernelId,
    name: k.name,
    kind: k.kind,
    entry: k.entry,
    abi: k.abi,
    sizeBytes: String(k.sizeBytes),
    registeredAtMs: k.registeredAtMs,
  };
}

/** Every DistributeX RPC but the node-security ones (services/security-service.ts). */
export type ClientRpcHandlers = Pick<
  DistributeXHandlers,
  "RegisterKernel" | "GetKernel" | "DeleteKernel" | "SubmitJob" | "SubmitJobStream" | "RunJob" | "GetJob" | "ListJobs" | "WatchJob" | "CancelJob" | "GetResults" | "GetResultOutput" | "ListNodes" | "WatchAlerts" | "CreateToken" | "ListTokens" | "RevokeToken"
>;

/** A job the scope may see: its own tenant's, or any (admin). Others' look exactly like unknown ones. */
const visibleTo = (scope: Scope) => (job: JobRecord) => scope.all || (job.tenant ?? DEFAULT_TENANT) === scope.tenant;

/**
 * WatchAlerts is served by the scheduler's alert bus (scheduler/alerts/grpc.ts). Every handler
 * runs behind guardService (scheduler/auth/policy.ts), which authenticated and authorized the
 * caller; here each one keeps to the caller's tenant.
 */
export function clientHandlers(
  core: SchedulerCore,
  alerts: Pick<DistributeXHandlers, "WatchAlerts">,
  access: { auth: AuthContext; quotas: TenantQuotas; limits: SubmitLimits; outputStallMs?: number },
): ClientRpcHandlers {
  const { auth, quotas, limits } = access;
  const submitter = new IdempotentSubmitter(core);
  const submitJob = async (req: SubmitJobRequest, scope: Scope) => {
    const r = req.resources;
    // Every job, admin's too, uses a kernel its own tenant holds: what a tenant holds cannot be
    // deleted or expire while its jobs run.
    if (isKernelId(req.kernelId)) await quotas.useKernel(scope.tenant, req.kernelId);
    // References name blobs sent in the same SubmitJobStream (submit-stream.ts resolves them to
    // bytes before this); a client cannot name a stored blob it did not send.
    if (req.tasks.some((t) => t.ref) || req.sharedInputs.some((s) => s.ref)) {
      throw invalidArgument("a task input or shared input by reference (ref) names a blob sent earlier in the same SubmitJobStream; SubmitJob takes data only");
    }
    return submitter.submit({
      tenant: scope.tenant,
      ...(scope.tokenId ? { tokenId: scope.tokenId } : {}),
      kernelId: req.kernelId,
      inputs: req.tasks.map((t) => t.data),
      ...(req.sharedInputs.length > 0 ? { sharedInputs: req.sharedInputs.map((x) => ({ name: x.name, data: x.data })) } : {}),
      needs: {
        cores: r?.cores ?? 0,
        memoryBytes: Number(r?.memoryBytes ?? 0),
        gpu: r?.gpu ?? false,
        nodeSelector: r?.nodeSelector ?? {},
      },
      priority: req.priority,
      timeoutMs: req.timeoutMs,
      maxAttempts: req.maxAttempts,
      name: req.name,
      gpuFallback: req.gpuFallback,
      skipCache: req.skipResultCache,
      ...(req.requestId ? { requestId: req.requestId } : {}),
      ...(req.unschedulable === "UNSCHEDULABLE_FAIL" ? { unschedulable: req.unschedulable } : {}),
    });
  };

  return {
    ...alerts,
    RegisterKernel: unary(async (req, scope) => {
      const kind = req.kind === "KERNEL_KIND_UNSPECIFIED" ? "KERNEL_KIND_WASM" : req.kind;
      // Registered into the caller's tenant, inside its kernel quotas.
      const save = { putKernel: (k: StoredKernel) => quotas.saveKernel(scope.tenant, k) };
      if (kind === "KERNEL_KIND_GPU") return registerGpuKernel({ store: save }, req);
      if (kind !== "KERNEL_KIND_WASM") throw failedPrecondition(`kernel kind ${kind} is not supported by this scheduler yet`);
      if (req.module.byteLength === 0) throw invalidArgument("module is empty: send the kernel's .wasm bytes");
      if (req.module.byteLength > MAX_KERNEL_BYTES) throw invalidArgument(`module is ${req.module.byteLength} bytes; the limit is ${MAX_KERNEL_BYTES}`);
      if (req.abi && req.abi !== WASM_ABI) throw invalidArgument(`abi ${JSON.stringify(req.abi)} is not supported; use ${WASM_ABI}`);
      if (req.name.length > 200) throw invalidArgument("name must be at most 200 characters");
      const entry = req.entry || ABI_EXPORTS.run;
      // Over quota: refused before the bytes are compiled.
      await quotas.precheckKernel(scope.tenant, sha256Hex(req.module), req.module.byteLength);
      try {
        await compileWasmKernel(req.module, entry);
      } catch (err) {
        if (err instanceof KernelAbiError) throw invalidArgument(err.message);
        throw err;
      }
      const kernelId = sha256Hex(req.module);
      const { created } = await save.putKernel({
        kernelId,
        name: req.name || "unnamed",
        kind,
        entry,
        abi: WASM_ABI,
        sizeBytes: req.module.byteLength,
        registeredAtMs: Date.now(),
        module: Buffer.from(req.module),
      });
      return { kernelId, alreadyRegistered: !created };
    }),

    GetKernel: unary(async (req, scope) => {
      if (!isKernelId(req.kernelId)) throw invalidArgument("kernel_id must be 64 lowercase hex digits");
      const reg = scope.all ? undefined : await core.store.getKernelRegistration(scope.tenant, req.kernelId);
      const k = scope.all || reg ? await core.store.getKernel(req.kernelId) : undefined;
      if (!k) throw notFound(`unknown kernel ${req.kernelId}`);
      return { ...kernelInfo(k), ...(reg ? { name: reg.name, registeredAtMs: reg.registeredAtMs } : {}) };
    }),

    DeleteKernel: unary(async (req, scope) => {
      if (!isKernelId(req.kernelId)) throw invalidArgument("kernel_id must be 64 lowercase hex digits");
      const tenant = req.tenant || scope.tenant;
      // Another tenant's kernel is as unknown to a non-admin as one that does not exist.
      if (tenant !== scope.tenant && !scope.all) throw notFound(`unknown kernel ${req.kernelId}`);
      return quotas.deleteKernel(tenant, req.kernelId);
    }),

    CreateToken: unary(async (req) => createToken(auth, req)),
    ListTokens: unary(async (req) => listTokens(auth, req)),
    RevokeToken: unary(async (req) => revokeToken(auth, req)),

    SubmitJob: unary(submitJob),
    SubmitJobStream: submitJobStream(limits, submitJob),

    GetJob: unary(async (req, scope) => withReason(core, core.getJob(req.jobId, visibleTo(scope)))),

    ListJobs: unary(async (req, scope) => ({ jobs: core.listJobs(req.limit || 50, visibleTo(scope)).map((j) => withReason(core, j)) })),

    WatchJob: (call) => {
      let job;
      try {
        job = core.getJob(call.request.jobId, visibleTo(scopeOf(callerOf(call))));
      } catch (err) {
        call.emit("error", toServiceError(err));
        return;
      }
      const { finalOnly, resume, seenOutcomes } = call.request;
      streamJobEvents(core, call, job, { rpc: "WatchJob", finalOnly, resume, seenOutcomes });
    },

    // Submit, then the final-only watch of the job on the same call (one call and one round trip
    // less per job). A retry with the same request id submits nothing new and watches the same job.
    RunJob: (call) => {
      const scope = scopeOf(callerOf(call));
      submitJob(call.request, scope)
        .then(({ jobId }) => streamJobEvents(core, call, core.getJob(jobId, visibleTo(scope)), { rpc: "RunJob", finalOnly: true, resume: false, seenOutcomes: Buffer.alloc(0), outcomesOfFinished: true }))
        .catch((err: unknown) => call.emit("error", toServiceError(err)));
    },
    CancelJob: unary(async (req, scope) => {
      core.getJob(req.jobId, visibleTo(scope));
      return toJobProto(await core.cancel(req.jobId));
    }),

    GetResults: unary(async (req, scope) => {
      const job = core.getJob(req.jobId, visibleTo(scope));
      const page = await resultsPage((offset, limit) => core.results(job.id, offset, limit), req, job.tasks.length);
      return {
        jobId: job.id,
        state: job.state,
        nextPageToken: page.nextPageToken,
        total: job.tasks.length,
        results: page.results.map((r) => ({
          taskIndex: r.taskIndex,
          state: r.state,
          output: r.output,
          error: r.error ? taskErrorProto(r.error) : null,
          nodeId: r.nodeId,
          attempt: r.attempt,
          runMs: r.runMs,
          backend: r.backend ?? "",
          logs: r.logs ?? [],
          outputRef: r.outputRef ? { sha256: r.outputRef.sha256, sizeBytes: String(r.outputRef.sizeBytes) } : null,
        })),
      };
    }),
    GetResultOutput: resultOutputHandler(core, (call) => visibleTo(scopeOf(callerOf(call))), access.outputStallMs),

    ListNodes: unary(async (req) => ({
      nodes: core.registry
        .all()
        .filter((n) => req.includeDown || n.state !== "NODE_STATE_DOWN")
        .map((n) => core.registry.toProto(n)),
    })),
  };
}
