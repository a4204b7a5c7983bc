// AgentService.FetchBlob: an input stored by reference, or a shared input, streamed to the agent
// in chunks of at most BLOB_CHUNK_BYTES read from the state store one at a time (with Redis,
// GETRANGE), so neither side ever holds a message bigger than a chunk. Only a node that holds a
// task of the job that refers to the blob may read it: a node cannot read another tenant's data
// by guessing or overhearing a hash. A reader that takes no chunk for `stallMs` (outputStallMs),
// or until its deadline, has its stream reset (stream-reset.ts says why not a status), so a
// stalled or vanished reader holds at most two chunks, and only for that long.
import * as grpc from "@grpc/grpc-js";
import { DistributeXError, invalidArgument, notFound, toServiceError } from "../../common/errors.js";
import { isKernelId } from "../../common/hash.js";
import type { Logger } from "../../common/logger.js";
import type { BlobData } from "../../generated/proto/distributex/v1/BlobData.js";
import type { FetchBlobRequest__Output } from "../../generated/proto/distributex/v1/FetchBlobRequest.js";
import { permissionDenied, principalOf } from "../auth/authenticate.js";
import type { SchedulerCore } from "../core.js";
import { isTerminalTask } from "../model.js";
import { resetServerStream, untilDeadline } from "./stream-reset.js";

/** What one FetchBlob message carries at most: gRPC's guidance is to stream large data in pieces of about this size. */
export const BLOB_CHUNK_BYTES = 1024 * 1024;

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
  // At most two chunks per call: the one going out and the next, written only once the one
  // before it went out. Waiting for "drain" alone would not do: grpc-js buffers up to 16 messages
  // (16 MiB) per call before write() says to wait, for a reader that takes nothing.
  const stalled = () => {
    log.warn({ event: "blob_fetch_stalled", sha256, jobId, taskIndex, stallMs }, "a FetchBlob reader took no chunk within outputStallMs (or its deadline); its stream was reset");
    if (!resetServerStream(call)) throw new DistributeXError(grpc.status.DEADLINE_EXCEEDED, `the reader took no chunk of blob ${sha256.slice(0, 12)}… for ${stallMs} ms (outputStallMs)`);
  };
  let previous = Promise.resolve(true);
  let offset = 0;
  do {
    if (call.cancelled) return;
    const length = Math.min(BLOB_CHUNK_BYTES, size - offset);
    const data = await core.store.readBlob(sha256, offset, length);
    if (!data || data.byteLength !== length) throw notFound(`blob ${sha256} is no longer stored (its job finished or was retired)`);
    if (!(await previous)) return stalled();
    if (call.cancelled) return;
    previous = sent(call, { offset: String(offset), data, sizeBytes: String(size) }, Math.min(stallMs, untilDeadline(call)));
    offset += length;
  } while (offset < size);
  if (!(await previous)) return stalled();
  call.end();
}

/**
 * Writes a chunk; resolves true once it went out to the reader (grpc-js calls back when HTTP/2
 * took it, which a shut flow-control window holds back) or the reader went away, or false once
 * `stallMs` passed first.
 */
function sent<Req>(call: grpc.ServerWritableStream<Req, BlobData>, chunk: BlobData, stallMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      call.off("cancelled", onCancelled);
      clearTimeout(timer);
      resolve(ok);
    };
    const onCancelled = () => done(true);
    const timer = setTimeout(() => done(false), stallMs);
    call.on("cancelled", onCancelled);
    call.write(chunk, () => done(true));
  });
}

/**
 * Resolves true when the stream can take more or the caller went away, or false once `stallMs`
 * passed first (the caller reads nothing: its flow-control window stays shut).
 */
export function drained<Req>(call: grpc.ServerWritableStream<Req, BlobData>, stallMs = Infinity): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      call.off("drain", onDrain);
      call.off("cancelled", onDrain);
      clearTimeout(timer);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const timer = Number.isFinite(stallMs) ? setTimeout(() => done(false), stallMs) : undefined;
    call.on("drain", onDrain);
    call.on("cancelled", onDrain);
  });
}
