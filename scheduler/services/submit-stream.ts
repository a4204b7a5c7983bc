// SubmitJobStream: a job sent as a header then task chunks (and blob chunks), so no one message
// holds a whole big job. The limits (maxTasksPerJob, maxJobBytes) are enforced chunk by chunk as
// they arrive: a job over them is refused before the rest of it is read, let alone held.
// A blob (a big task input, or a shared input) comes in pieces of its own (BlobChunk), each
// counted as it arrives and checked against its sha256 once complete; tasks and shared inputs
// then name it by reference (BlobRef). Before the job is submitted every reference is resolved
// to the bytes received, so the core sees the same request as from a unary SubmitJob.
import type * as grpc from "@grpc/grpc-js";
import { createHash, type Hash } from "node:crypto";
import { invalidArgument, resourceExhausted, toServiceError } from "../../common/errors.js";
import { isKernelId } from "../../common/hash.js";
import type { SchedulerConfig } from "../../common/config.js";
import type { SubmitJobChunk, SubmitJobRequest } from "../../common/types.js";
import type { SubmitJobResponse } from "../../generated/proto/distributex/v1/SubmitJobResponse.js";
import { callerOf, scopeOf, type Scope } from "../auth/policy.js";
import { refusalOf } from "../submit-precheck.js";
import { verifiedSha256 } from "../jobs/blob-inputs.js";

export type SubmitLimits = Pick<SchedulerConfig, "maxTasksPerJob" | "maxJobBytes">;

/** A blob being received: its bytes so far, and their running hash. */
interface IncomingBlob {
  data: Buffer;
  received: number;
  hash?: Hash;
}

export function submitJobStream(
  limits: SubmitLimits,
  submit: (req: SubmitJobRequest, scope: Scope) => Promise<SubmitJobResponse>,
): grpc.handleClientStreamingCall<SubmitJobChunk, SubmitJobResponse> {
  return (call, callback) => {
    let header: SubmitJobRequest | undefined;
    const tasks: SubmitJobRequest["tasks"] = [];
    const blobs = new Map<string, IncomingBlob>();
    let bytes = 0;
    let answered = false;
    const tooBig = () => resourceExhausted(`job inputs total more than ${limits.maxJobBytes} bytes; the limit is ${limits.maxJobBytes} (maxJobBytes); not retryable: split the job`);
    const answer = (err: unknown, res?: SubmitJobResponse) => {
      if (answered) return;
      answered = true;
      call.removeAllListeners("data");
      tasks.length = 0;
      blobs.clear();
      // A chunk refused before decoding carries its status already.
      if (err) callback(refusalOf(err) ?? toServiceError(err));
      else callback(null, res);
    };
    const takeBlobPiece = (piece: NonNullable<SubmitJobChunk["blob"]>) => {
      if (!isKernelId(piece.sha256)) throw invalidArgument("SubmitJobStream: blob.sha256 must be 64 lowercase hex digits");
      const size = Number(piece.sizeBytes);
      let blob = blobs.get(piece.sha256);
      if (!blob) {
        if (!Number.isSafeInteger(size) || size < 0) throw invalidArgument(`SubmitJobStream: blob.size_bytes must be a byte count, got ${piece.sizeBytes}`);
        // Counted (and refused) before its room is taken.
        bytes += size;
        if (bytes > limits.maxJobBytes) throw tooBig();
        blob = { data: Buffer.allocUnsafe(size), received: 0, hash: createHash("sha256") };
        blobs.set(piece.sha256, blob);
      }
      if (!blob.hash) throw invalidArgument(`SubmitJobStream: blob ${piece.sha256} was already complete`);
      if (size !== blob.data.byteLength) throw invalidArgument(`SubmitJobStream: blob ${piece.sha256} changed its size_bytes`);
      if (blob.received + piece.data.byteLength > size) throw invalidArgument(`SubmitJobStream: blob ${piece.sha256} has more than its ${size} bytes`);
      piece.data.copy(blob.data, blob.received);
      blob.hash.update(piece.data);
      blob.received += piece.data.byteLength;
      if (blob.received === size) {
        if (blob.hash.digest("hex") !== piece.sha256) throw invalidArgument(`SubmitJobStream: the bytes of blob ${piece.sha256} do not match that sha256`);
        blob.hash = undefined;
        verifiedSha256.set(blob.data, piece.sha256);
      }
    };
    /** The bytes a reference names: a blob received complete earlier in this stream. */
    const resolve = (ref: { sha256: string; sizeBytes: string } | null | undefined, field: string): Buffer => {
      const blob = ref ? blobs.get(ref.sha256) : undefined;
      if (!ref || !blob || blob.hash) throw invalidArgument(`SubmitJobStream: ${field} names blob ${ref?.sha256 ?? "(none)"}, which the stream did not send complete before it ended`);
      if (Number(ref.sizeBytes) !== blob.data.byteLength) throw invalidArgument(`SubmitJobStream: ${field} gives size ${ref.sizeBytes} for a blob of ${blob.data.byteLength} bytes`);
      return blob.data;
    };
    call.on("data", (chunk: SubmitJobChunk) => {
      if (answered) return;
      try {
        if (refusalOf(chunk)) return answer(chunk);
        if (chunk.header) {
          if (header) throw invalidArgument("SubmitJobStream: the header came twice; send it once, first");
          if (chunk.header.tasks.length > 0) throw invalidArgument("SubmitJobStream: the header carries no tasks; send them in task chunks after it");
          header = chunk.header;
          for (const s of header.sharedInputs) bytes += s.data.byteLength;
          if (bytes > limits.maxJobBytes) throw tooBig();
        } else if (!header) {
          throw invalidArgument("SubmitJobStream: the first message must be the header");
        } else if (chunk.blob) {
          takeBlobPiece(chunk.blob);
        } else if (chunk.tasks) {
          for (const t of chunk.tasks.items) {
            tasks.push(t);
            bytes += t.data.byteLength;
          }
          if (tasks.length > limits.maxTasksPerJob) throw resourceExhausted(`job has more than ${limits.maxTasksPerJob} tasks; the limit is ${limits.maxTasksPerJob} (maxTasksPerJob); not retryable: split the job`);
          if (bytes > limits.maxJobBytes) throw tooBig();
        }
      } catch (err) {
        answer(err);
      }
    });
    call.on("end", () => {
      if (answered) return;
      if (!header) return answer(invalidArgument("SubmitJobStream: the stream ended without a header"));
      let req: SubmitJobRequest;
      try {
        req = {
          ...header,
          tasks: tasks.map((t, i) => (t.ref ? { data: resolve(t.ref, `task ${i}`), ref: null } : t)),
          sharedInputs: header.sharedInputs.map((s) => (s.ref ? { name: s.name, data: resolve(s.ref, `shared input ${s.name}`), ref: null } : s)),
        };
      } catch (err) {
        return answer(err);
      }
      submit(req, scopeOf(callerOf(call))).then(
        (res) => answer(null, res),
        (err) => answer(err),
      );
    });
    // The client went away: nothing to answer; drop what arrived.
    call.on("error", () => {
      answered = true;
      tasks.length = 0;
      blobs.clear();
    });
  };
}
