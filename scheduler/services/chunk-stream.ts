// Stored bytes sent down a server stream in chunks (FetchBlob's blobs, GetResultOutput's
// outputs), with every stream bounded: a chunk is read from the store only once the one before
// it is on its way, and written only once the one before that went out to the reader (the
// write's callback, not just "drain": grpc-js buffers up to 16 messages per call, 16 MiB here,
// before write() asks to wait, for a reader that takes nothing). So a stream holds at most two
// chunks, whatever its reader does. A reader that takes no chunk for `stallMs` (outputStallMs),
// or until its deadline, has its stream reset (stream-reset.ts says why not a status); one that
// goes away ends it at once.
import * as grpc from "@grpc/grpc-js";
import { DistributeXError } from "../../common/errors.js";
import type { BlobData } from "../../generated/proto/distributex/v1/BlobData.js";
import { resetServerStream, untilDeadline } from "./stream-reset.js";

/** What one message carries at most: gRPC's guidance is to stream large data in pieces of about this size. */
export const CHUNK_BYTES = 1024 * 1024;

export interface ChunkSource {
  /** The bytes in all. */
  size: number;
  /** Bytes [offset, offset + length) from the store, exactly; throws (NOT_FOUND, UNAVAILABLE) when it cannot. */
  read(offset: number, length: number): Promise<Buffer>;
  /** What the stream carries, for the error a reset that could not happen becomes ("blob 3f2a…"). */
  what: string;
  /** Milliseconds a reader may take no chunk before its stream is reset. */
  stallMs: number;
  /** Told before a stalled stream is reset (to log it). */
  onStall?(): void;
}

/** Streams the source to the call and ends it; resolves when all went out, the reader went away, or its stalled stream was reset. */
export async function sendChunks<Req>(call: grpc.ServerWritableStream<Req, BlobData>, source: ChunkSource): Promise<void> {
  const { size, stallMs } = source;
  const stalled = () => {
    source.onStall?.();
    if (!resetServerStream(call)) throw new DistributeXError(grpc.status.DEADLINE_EXCEEDED, `the reader took no chunk of ${source.what} for ${stallMs} ms (outputStallMs)`);
  };
  let previous = Promise.resolve(true);
  let offset = 0;
  do {
    if (call.cancelled) return;
    const length = Math.min(CHUNK_BYTES, size - offset);
    const data = await source.read(offset, length);
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
