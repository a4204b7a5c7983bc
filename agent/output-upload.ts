// Outputs by reference, the agent's side: a task output of at least the scheduler's
// outputByRefBytes (told at Register) is streamed to it with UploadOutput in chunks of at most
// 1 MiB (flow-controlled: at most one chunk waits in this process beyond the output itself), and
// the final update then names it by sha256 and size. Transient failures (scheduler failing over,
// busy, store unreachable) are retried with capped backoff for UPLOAD_RETRY_MS; a store still
// unavailable after that ends the attempt with OUTPUT_UNSTORED, which the scheduler places again
// without using up an attempt (the outage is not the task's fault); anything else fails it.
import * as grpc from "@grpc/grpc-js";
import { createHash } from "node:crypto";
import type { AgentServiceGrpcClient } from "../common/types.js";
import type { FetchContext } from "./fetch-retry.js";
import { TaskFailure } from "./pool/types.js";

/** The most one UploadOutput message carries (the same as FetchBlob's chunks). */
export const UPLOAD_CHUNK_BYTES = 1024 * 1024;
/** How long transient upload failures are retried before the attempt fails (retryably). */
export const UPLOAD_RETRY_MS = 10_000;

export interface OutputRef {
  sha256: string;
  sizeBytes: number;
}

export interface UploadTarget {
  jobId: string;
  taskIndex: number;
  attempt: number;
  /** This node's id (the scheduler reads it only in --insecure clusters, which have no certificates). */
  nodeId: string;
}

type UploadFailure = { code: number | undefined; message: string };

function uploadOnce(client: AgentServiceGrpcClient, target: UploadTarget, ref: OutputRef, data: Uint8Array): Promise<UploadFailure | undefined> {
  return new Promise((resolve) => {
    const call = client.UploadOutput({ deadline: Date.now() + 120_000 }, (err) => resolve(err ? { code: err.code, message: err.details || err.message } : undefined));
    const chunks = function* () {
      yield { header: { ...target, ref: { sha256: ref.sha256, sizeBytes: String(ref.sizeBytes) } } };
      for (let off = 0; off < data.byteLength; off += UPLOAD_CHUNK_BYTES) yield { data: data.subarray(off, Math.min(off + UPLOAD_CHUNK_BYTES, data.byteLength)) };
    };
    const it = chunks();
    // Write while the stream takes more; wait for "drain" otherwise (one chunk buffered at most).
    const pump = (): void => {
      for (let next = it.next(); !next.done; next = it.next()) if (!call.write(next.value)) return void call.once("drain", pump);
      call.end();
    };
    call.on("error", () => undefined); // the callback reports it
    pump();
  });
}

/** Uploads the output and answers its reference; throws a TaskFailure when it cannot. */
export async function uploadOutputRetrying(ctx: FetchContext, target: UploadTarget, data: Uint8Array): Promise<OutputRef> {
  const ref = { sha256: createHash("sha256").update(data).digest("hex"), sizeBytes: data.byteLength };
  const until = Date.now() + UPLOAD_RETRY_MS;
  for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
    const failure = await uploadOnce(ctx.client(), target, ref, data);
    if (!failure) return ref;
    const what = `cannot upload the ${data.byteLength}-byte output of task ${target.jobId}/${target.taskIndex}: ${failure.message}`;
    // The tenant's outputBytes quota, or a full store: this output cannot be kept.
    if (failure.code === grpc.status.RESOURCE_EXHAUSTED) throw new TaskFailure("OUTPUT_TOO_LARGE", what);
    const transient = failure.code === grpc.status.UNAVAILABLE || failure.code === grpc.status.DEADLINE_EXCEEDED;
    if (!transient || ctx.closing()) throw new TaskFailure("INTERNAL", what);
    // The store is still out past the window: the output is dropped here (holding it would pin
    // the worker and its memory for as long as the outage lasts) and the task placed again.
    if (Date.now() + delay > until) throw new TaskFailure("OUTPUT_UNSTORED", `${what} (still failing after ${UPLOAD_RETRY_MS} ms of retries; the task will run again, without using up an attempt)`);
    ctx.log.warn({ event: "output_upload_retry", jobId: target.jobId, task: target.taskIndex, err: failure.message, retryInMs: delay }, "output upload failed; retrying");
    await new Promise((r) => setTimeout(r, delay));
  }
}
