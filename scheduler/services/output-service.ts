// Outputs by reference. AgentService.UploadOutput: an agent with an output of at least
// outputByRefBytes streams it here in chunks; it is checked (size, sha256), counted in the
// tenant's outputBytes quota and kept with the job's results (StateStore.putOutput), and the
// final TaskUpdate (and its Kafka record) then carries only its reference. Only the node holding
// that attempt of the unfinished task may upload it (the update guard's rule, applied before any
// byte is read). DistributeX.GetResultOutput streams a kept output back to a client in chunks.
import * as grpc from "@grpc/grpc-js";
import { createHash, randomUUID } from "node:crypto";
import { DistributeXError, failedPrecondition, invalidArgument, notFound, toServiceError } from "../../common/errors.js";
import { isKernelId } from "../../common/hash.js";
import type { Logger } from "../../common/logger.js";
import { MAX_SESSION_OUTPUT_BYTES } from "../../common/proto.js";
import type { BlobData } from "../../generated/proto/distributex/v1/BlobData.js";
import type { GetResultOutputRequest__Output } from "../../generated/proto/distributex/v1/GetResultOutputRequest.js";
import type { OutputChunk__Output } from "../../generated/proto/distributex/v1/OutputChunk.js";
import type { OutputHeader__Output } from "../../generated/proto/distributex/v1/OutputHeader.js";
import type { UploadOutputResponse } from "../../generated/proto/distributex/v1/UploadOutputResponse.js";
import { permissionDenied, principalOf } from "../auth/authenticate.js";
import { DEFAULT_TENANT } from "../auth/principal.js";
import { exceeded } from "../auth/quotas.js";
import type { SchedulerConfig } from "../../common/config.js";
import { backendError } from "../backends/errors.js";
import { outputName } from "../backends/types.js";
import type { SchedulerCore } from "../core.js";
import { isTerminalTask, type JobRecord } from "../model.js";
import { rejectUpdate } from "../update-guard.js";
import { sendChunks } from "./chunk-stream.js";
import { UploadFence } from "./upload-fence.js";

/** The most one UploadOutput piece may carry (agents send 1 MiB): what the scheduler holds per upload. */
export const UPLOAD_PIECE_BYTES = 4 * 1024 * 1024;

export interface OutputSettings {
  /** Outputs of at least this many bytes go by reference (told to agents at Register); 0 = never. */
  byRefBytes: number;
  /** A tenant's outputBytes quota. */
  quotaBytes(tenant: string): number;
}

/** The settings from the scheduler's configuration. */
export type OutputConfig = Pick<SchedulerConfig, "outputByRefBytes" | "quotaOutputBytes" | "tenantQuotas" | "outputStallMs">;

export function outputSettings(config: OutputConfig): OutputSettings {
  return { byRefBytes: config.outputByRefBytes, quotaBytes: (tenant) => config.tenantQuotas[tenant]?.outputBytes ?? config.quotaOutputBytes };
}

const tenantOf = (job: JobRecord) => job.tenant ?? DEFAULT_TENANT;

/** Bytes of uploads admitted and not yet ended, by tenant: counted in the quota, so uploads at once cannot overshoot it together. */
const uploading = new Map<string, number>();

function reserve(tenant: string, bytes: number): () => void {
  uploading.set(tenant, (uploading.get(tenant) ?? 0) + bytes);
  return () => {
    const left = (uploading.get(tenant) ?? 0) - bytes;
    if (left > 0) uploading.set(tenant, left);
    else uploading.delete(tenant);
  };
}

/** Output bytes kept for the tenant's jobs the scheduler still holds (finished ones too), and being uploaded. */
function outputUse(core: SchedulerCore, tenant: string): number {
  let bytes = uploading.get(tenant) ?? 0;
  for (const j of core.allJobs()) if (tenantOf(j) === tenant) bytes += j.outputBytes ?? 0;
  return bytes;
}

export function uploadOutputHandler(core: SchedulerCore, settings: OutputSettings, log: Logger, fence = new UploadFence()): grpc.handleClientStreamingCall<OutputChunk__Output, UploadOutputResponse> {
  return (call, callback) => {
    const uploadId = randomUUID();
    const held = { release: () => {}, unfence: () => {} };
    receive(core, settings, fence, call, uploadId, held).finally(() => (held.release(), held.unfence())).then(
      () => callback(null, {}),
      (err: unknown) => {
        // The store's failures are logged (the agent retries them); a refused caller is its own business.
        if (!(err instanceof DistributeXError) || err.code === grpc.status.UNAVAILABLE) log.warn({ event: "output_upload_failed", err: (err as Error).message }, "an output upload failed");
        callback(toServiceError(err));
        // What was appended of it goes at once (Redis would expire it only 10 minutes on). The
        // loop appends no more once it has failed, so this DEL comes after its last APPEND.
        core.store.dropUpload(uploadId).catch(() => undefined);
      },
    );
  };
}

/**
 * Checks the header, then appends each piece to the store as it comes (the next is read only
 * once it is written: the scheduler holds about a piece per upload), checks size and sha256,
 * and keeps it.
 */
async function receive(
  core: SchedulerCore,
  settings: OutputSettings,
  fence: UploadFence,
  call: grpc.ServerReadableStream<OutputChunk__Output, UploadOutputResponse>,
  uploadId: string,
  held: { release: () => void; unfence: () => void },
): Promise<void> {
  let header: OutputHeader__Output | undefined;
  let job: JobRecord | undefined;
  let size = 0;
  let received = 0;
  const hash = createHash("sha256");
  // The fence may end the upload while it waits for its next piece (the agent paused, or slow).
  // Each wait is a promise of its own that the fence can settle: racing every piece against one
  // long-lived promise would hang a reaction on it per piece, each holding that piece's bytes.
  let ended: DistributeXError | undefined;
  let interrupt: (() => void) | undefined;
  const pieces = (call as AsyncIterable<OutputChunk__Output>)[Symbol.asyncIterator]();
  for (;;) {
    if (ended) throw ended;
    const next = await new Promise<IteratorResult<OutputChunk__Output> | undefined>((resolve, reject) => {
      interrupt = () => resolve(undefined);
      pieces.next().then(resolve, reject);
    });
    interrupt = undefined;
    if (ended) throw ended;
    if (!next || next.done) break;
    const chunk = next.value;
    if (!header) {
      if (chunk.part !== "header" || !chunk.header) throw invalidArgument("UploadOutput starts with a header");
      header = chunk.header;
      const admitted = admit(core, settings, call, header);
      job = admitted.job;
      size = Number(header.ref!.sizeBytes);
      held.release = reserve(tenantOf(job), size);
      held.unfence = fence.add(admitted.nodeId, (err) => {
        ended = err;
        interrupt?.();
      });
      continue;
    }
    if (chunk.part !== "data" || !chunk.data) throw invalidArgument("after the header, UploadOutput carries only data");
    if (chunk.data.byteLength > UPLOAD_PIECE_BYTES) throw invalidArgument(`an UploadOutput piece has at most ${UPLOAD_PIECE_BYTES} bytes`);
    if (received + chunk.data.byteLength > size) throw invalidArgument(`the output passes its declared size ${size}`);
    stillWanted(core, job!, header);
    hash.update(chunk.data);
    received += chunk.data.byteLength;
    await stored(`could not store bytes ${received - chunk.data.byteLength}-${received} of the output of task ${job!.id}/${header.taskIndex}`, core.store.appendUpload(uploadId, chunk.data));
  }
  if (!header || !job) throw invalidArgument("UploadOutput carried no header");
  const ref = { sha256: header.ref!.sha256, sizeBytes: size };
  if (received !== size) throw invalidArgument(`the output ended after ${received} of ${size} bytes`);
  if (hash.digest("hex") !== ref.sha256) throw invalidArgument("the output's bytes do not match its sha256");
  stillWanted(core, job, header);
  const name = outputName(header.taskIndex, header.attempt);
  // The same attempt uploading again (its first reply was lost) is kept once, and counted once.
  const what = `could not keep the output of task ${job.id}/${header.taskIndex}`;
  const already = await stored(what, core.store.getOutputRef(job.id, name));
  if (!(await stored(what, core.store.putOutput(job.id, name, ref, uploadId)))) throw failedPrecondition(`job ${job.id} has finished; its task ${header.taskIndex} needs no output any more`);
  if (!already) job.outputBytes = (job.outputBytes ?? 0) + size;
}

/**
 * The attempt fence, checked on every piece and before the output is kept: once the task has
 * ended (another attempt's result was kept, or the job was cancelled or retired) the rest of an
 * upload is refused and what came of it dropped, so a stale attempt never adds an output.
 */
function stillWanted(core: SchedulerCore, job: JobRecord, h: OutputHeader__Output): void {
  const task = core.peekJob(job.id) === job ? job.tasks[h.taskIndex] : undefined;
  if (!task || isTerminalTask(task.state)) {
    throw failedPrecondition(`task ${job.id}/${h.taskIndex} has ended (another attempt's result was kept, or the job was cancelled); attempt ${h.attempt}'s upload was dropped; not retryable`);
  }
}

/**
 * A store failure as a status that says whether the agent may retry: UNAVAILABLE ("retry is
 * safe": Redis refusing writes at maxmemory, restarting, unreachable), FAILED_PRECONDITION for a
 * refusal by configuration (ACL), the memory store's RESOURCE_EXHAUSTED as it is. Nothing of a
 * failed upload is kept, so a retry starts it afresh.
 */
function stored<T>(what: string, p: Promise<T>): Promise<T> {
  return p.catch((err: unknown) => {
    throw backendError(what, err);
  });
}

/** The job, once the caller may upload this output and it fits; throws otherwise. */
function admit(core: SchedulerCore, settings: OutputSettings, call: object, h: OutputHeader__Output): { job: JobRecord; nodeId: string } {
  if (!h.ref || !isKernelId(h.ref.sha256)) throw invalidArgument("the header's ref.sha256 must be 64 lowercase hex digits");
  const size = Number(h.ref.sizeBytes);
  if (!Number.isSafeInteger(size) || size <= 0 || size > MAX_SESSION_OUTPUT_BYTES) throw invalidArgument(`an output by reference has 1 to ${MAX_SESSION_OUTPUT_BYTES} bytes, not ${h.ref.sizeBytes}`);
  const principal = principalOf(call);
  // With node certificates the node is the certificate's; --insecure has no identity, so the header names it.
  const nodeId = principal?.kind === "node" ? principal.nodeId : h.nodeId;
  const job = core.peekJob(h.jobId);
  const task = job?.tasks[h.taskIndex];
  if (!job || !task || isTerminalTask(task.state) || rejectUpdate(task, nodeId, h.attempt) !== undefined) {
    throw permissionDenied(`node ${nodeId || "(none)"} does not hold attempt ${h.attempt} of an unfinished task ${h.jobId}/${h.taskIndex}; not retryable`);
  }
  const tenant = tenantOf(job);
  const limit = settings.quotaBytes(tenant);
  const use = outputUse(core, tenant);
  if (use + size > limit) throw exceeded(tenant, "outputBytes", limit, use, size, "its finished jobs' results are dropped (retainFinishedJobs, resultTtlS)");
  return { job, nodeId };
}

/** GetResultOutput streams open now (the distx_result_output_streams gauge): each holds at most two chunks. */
export const resultOutputStreams = { open: 0 };

/**
 * GetResultOutput: a kept output, in chunks read from the store one at a time, bounded as
 * chunk-stream.ts says: at most two chunks held per stream, a client that goes away ends it at
 * once, one that takes no chunk until its deadline or for `stallMs` (outputStallMs) has its
 * stream reset (RST_STREAM CANCEL: stream-reset.ts says why not a status).
 */
export function resultOutputHandler(
  core: SchedulerCore,
  visibleTo: (call: object) => (job: JobRecord) => boolean,
  stallMs = 60_000,
): grpc.handleServerStreamingCall<GetResultOutputRequest__Output, BlobData> {
  return (call) => {
    resultOutputStreams.open++;
    void sendOutput(core, call, visibleTo(call), stallMs)
      .catch((err: unknown) => call.emit("error", toServiceError(err)))
      .finally(() => resultOutputStreams.open--);
  };
}

async function sendOutput(core: SchedulerCore, call: grpc.ServerWritableStream<GetResultOutputRequest__Output, BlobData>, visible: (job: JobRecord) => boolean, stallMs: number): Promise<void> {
  const { jobId, taskIndex } = call.request;
  const job = core.getJob(jobId, visible);
  const [r] = await core.results(job.id, taskIndex, 1);
  if (!r || r.taskIndex !== taskIndex || !r.outputRef) throw notFound(`task ${taskIndex} of job ${jobId} has no output stored by reference (GetResults carries its output)`);
  const name = outputName(taskIndex, r.attempt);
  await sendChunks(call, {
    size: r.outputRef.sizeBytes,
    what: `the output of task ${jobId}/${taskIndex}`,
    stallMs,
    read: async (offset, length) => {
      const data = await stored(`could not read the output of task ${job.id}/${taskIndex}`, core.store.readOutput(job.id, name, offset, length));
      if (!data || data.byteLength !== length) throw notFound(`the output of task ${taskIndex} of job ${jobId} is no longer kept (its results expired)`);
      return data;
    },
  });
}
