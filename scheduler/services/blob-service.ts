// AgentService.FetchBlob: an input stored by reference, or a shared input, streamed to the agent
// in chunks of at most CHUNK_BYTES (chunk-stream.ts) read from the state store one at a time (with Redis,
// GETRANGE), so neither side ever holds a message bigger than a chunk. Only a node that holds a
// task of the job that refers to the blob may read it: a node cannot read another tenant's data
// by guessing or overhearing a hash. The stream is bounded as chunk-stream.ts says: at most two
// chunks held, a reader stalled past `stallMs` (outputStallMs) or its deadline reset.
import * as grpc from "@grpc/grpc-js";
import { invalidArgument, notFound, toServiceError } from "../../common/errors.js";
import { isKernelId } from "../../common/hash.js";
import type { Logger } from "../../common/logger.js";
import type { BlobData } from "../../generated/proto/distributex/v1/BlobData.js";
import type { FetchBlobRequest__Output } from "../../generated/proto/distributex/v1/FetchBlobRequest.js";
import { permissionDenied, principalOf } from "../auth/authenticate.js";
import type { SchedulerCore } from "../core.js";
import { isTerminalTask } from "../model.js";
import { sendChunks } from "./chunk-stream.js";

/** FetchBlob streams open now (the distx_blob_fetch_streams gauge): each holds at most two chunks. */
export const blobFetchStreams = { open: 0 };

export function fetchBlobHandler(core: SchedulerCore, log: Logger, stallMs = 60_000): grpc.handleServerStreamingCall<FetchBlobRequest__Output, BlobData> {
  return (call) => {
    blobFetchStreams.open++;
    void serve(core, call, log, stallMs)
      .catch((err: unknown) => {
        log.warn({ event: "blob_fetch_failed", sha256: call.request.sha256, jobId: call.request.jobId, err: (err as Error).message }, "a blob fetch failed");
        call.emit("error", toServiceError(err));
      })
      .finally(() => blobFetchStreams.open--);
  };
}

async function serve(core: SchedulerCore, call: grpc.ServerWritableStream<FetchBlobRequest__Output, BlobData>, log: Logger, stallMs: number): Promise<void> {
  const { sha256, jobId, taskIndex } = call.request;
  if (!isKernelId(sha256)) throw invalidArgument("sha256 must be 64 lowercase hex digits");
  const job = core.peekJob(jobId);
  const task = job?.tasks[taskIndex];
  const principal = principalOf(call);
  const nodeId = principal?.kind === "node" ? principal.nodeId : undefined;
  const refers = !!job && (task?.inputRef?.sha256 === sha256 || (job.sharedInputs ?? []).some((s) => s.ref.sha256 === sha256));
  // With node certificates: only the node holding that (unfinished) task. With --insecure there
  // is no node identity; the task must still exist and refer to the blob.
  const holds = !!task && !isTerminalTask(task.state) && (nodeId === undefined || task.nodeId === nodeId);
  if (!refers || !holds) {
    throw permissionDenied(`blob ${sha256.slice(0, 12)}… is not an input of a task of job ${jobId} that this node holds; not retryable`);
  }
  const size = task.inputRef?.sha256 === sha256 ? task.inputRef.sizeBytes : job.sharedInputs!.find((s) => s.ref.sha256 === sha256)!.ref.sizeBytes;
  await sendChunks(call, {
    size,
    what: `blob ${sha256.slice(0, 12)}…`,
    stallMs,
    read: async (offset, length) => {
      const data = await core.store.readBlob(sha256, offset, length);
      if (!data || data.byteLength !== length) throw notFound(`blob ${sha256} is no longer stored (its job finished or was retired)`);
      return data;
    },
    onStall: () => log.warn({ event: "blob_fetch_stalled", sha256, jobId, taskIndex, stallMs }, "a FetchBlob reader took no chunk within outputStallMs (or its deadline); its stream was reset"),
  });
}
