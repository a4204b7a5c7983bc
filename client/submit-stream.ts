// The messages of a SubmitJobStream: a big job in chunks, so that no one message holds it.
import { createHash } from "node:crypto";

/** Above these a job is submitted with SubmitJobStream, in chunks of SUBMIT_CHUNK_BYTES. */
export const STREAM_SUBMIT_ABOVE_BYTES = 4 * 1024 * 1024;
export const STREAM_SUBMIT_ABOVE_TASKS = 10_000;
const SUBMIT_CHUNK_BYTES = 1024 * 1024;
/** In a stream, a task input this big goes as a blob in chunks (then the task names it): no message holds more than a chunk. */
const BLOB_UPLOAD_ABOVE_BYTES = SUBMIT_CHUNK_BYTES;
/**
 * The messages of one SubmitJobStream, made as they are written: the header (shared inputs named
 * by reference), each shared input as blob chunks, then the tasks in chunks of about
 * SUBMIT_CHUNK_BYTES; a task input above BLOB_UPLOAD_ABOVE_BYTES goes as blob chunks first (once
 * per distinct input) and the task names it. So no message is bigger than about one chunk.
 */
export function* submitStreamMessages(header: Record<string, unknown>, inputs: Uint8Array[], shared: { name: string; data: Uint8Array }[]): Generator<Record<string, unknown>> {
  const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
  const sent = new Set<string>();
  function* blob(data: Uint8Array, sha: string): Generator<Record<string, unknown>> {
    if (sent.has(sha)) return;
    sent.add(sha);
    const sizeBytes = String(data.byteLength);
    if (data.byteLength === 0) yield { blob: { sha256: sha, sizeBytes, data: new Uint8Array(0) } };
    for (let at = 0; at < data.byteLength; at += SUBMIT_CHUNK_BYTES) yield { blob: { sha256: sha, sizeBytes, data: data.subarray(at, at + SUBMIT_CHUNK_BYTES) } };
  }
  const sharedRefs = shared.map((s) => ({ name: s.name, sha: sha256(s.data), data: s.data }));
  yield { header: { ...header, sharedInputs: sharedRefs.map((s) => ({ name: s.name, ref: { sha256: s.sha, sizeBytes: String(s.data.byteLength) } })) } };
  for (const s of sharedRefs) yield* blob(s.data, s.sha);
  // The same input object is hashed once (jobs often repeat one buffer).
  const known = new Map<Uint8Array, string>();
  let items: Record<string, unknown>[] = [];
  let itemBytes = 0;
  for (const data of inputs) {
    if (data.byteLength > BLOB_UPLOAD_ABOVE_BYTES) {
      let sha = known.get(data);
      if (!sha) known.set(data, (sha = sha256(data)));
      yield* blob(data, sha);
      items.push({ ref: { sha256: sha, sizeBytes: String(data.byteLength) } });
    } else {
      if (itemBytes + data.byteLength > SUBMIT_CHUNK_BYTES && items.length > 0) {
        yield { tasks: { items } };
        items = [];
        itemBytes = 0;
      }
      items.push({ data });
      itemBytes += data.byteLength;
    }
    if (items.length >= 10_000) {
      yield { tasks: { items } };
      items = [];
      itemBytes = 0;
    }
  }
  if (items.length > 0) yield { tasks: { items } };
}
