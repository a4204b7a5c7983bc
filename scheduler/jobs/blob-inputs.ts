// Inputs by reference: a task input of at least inputByRefBytes, and every shared input, is stored
// once in the state store under its sha256 and travels as a reference (BlobRef); agents fetch
// it with FetchBlob (services/blob-service.ts) and cache it by hash. Assignments and the Kafka
// records that carry them (submissions, assignments) then stay small whatever the data.
import { knownSha256, sha256Once } from "../../common/hash.js";
import type { BlobRefShape, StateStore } from "../backends/types.js";
import type { SharedInputShape } from "../model.js";

/**
 * Buffers whose sha256 is already known and checked (SubmitJobStream hashes each blob as it
 * arrives, the duplicate check each input): planBlobs takes the hash from here instead of hashing
 * the bytes a second time.
 */
export const verifiedSha256 = knownSha256;

export interface BlobPlan {
  /** The tasks' inputs, empty where the input goes by reference. */
  inputs: Buffer[];
  /** Absent when no input goes by reference. */
  inputRefs?: (BlobRefShape | null)[];
  sharedInputs?: SharedInputShape[];
  /** The bytes to store, by sha256 (each distinct blob once). */
  blobs: Map<string, Buffer>;
}

/** Decides what goes by reference and hashes it; stores nothing yet (storeBlobs does). */
export function planBlobs(inputs: Buffer[], shared: { name: string; data: Buffer }[] | undefined, thresholdBytes: number): BlobPlan {
  const blobs = new Map<string, Buffer>();
  // Tasks often share one buffer (a stream's blob named by many tasks): hashed once (sha256Once).
  const refOf = (data: Buffer): BlobRefShape => {
    const sha256 = sha256Once(data);
    if (!blobs.has(sha256)) blobs.set(sha256, data);
    return { sha256, sizeBytes: data.byteLength };
  };
  let inputRefs: (BlobRefShape | null)[] | undefined;
  let planned = inputs;
  if (thresholdBytes > 0 && inputs.some((b) => b.byteLength >= thresholdBytes)) {
    inputRefs = inputs.map((b) => (b.byteLength >= thresholdBytes ? refOf(b) : null));
    planned = inputs.map((b, i) => (inputRefs![i] ? EMPTY : b));
  }
  const sharedInputs = shared && shared.length > 0 ? shared.map((s) => ({ name: s.name, ref: refOf(s.data) })) : undefined;
  return { inputs: planned, blobs, ...(inputRefs ? { inputRefs } : {}), ...(sharedInputs ? { sharedInputs } : {}) };
}

const EMPTY = Buffer.alloc(0);

/** What a stored slice may keep alive beyond its own bytes (uncounted by the blob store bound). */
const SLICE_SLACK_BYTES = 4096;

/** Stores the plan's blobs as held by the job; on failure, the holds already taken are released. */
export async function storeBlobs(store: StateStore, jobId: string, blobs: Map<string, Buffer>): Promise<void> {
  try {
    for (const [sha256, data] of blobs) {
      // A slice of a larger request buffer would keep all of it alive: store bytes of its own,
      // unless the slice is nearly all of it (a streamed task message of one input: a few bytes
      // of framing), where a copy would cost a pass over the input to save those bytes.
      const own = data.buffer.byteLength - data.byteLength <= SLICE_SLACK_BYTES ? data : Buffer.from(data);
      await store.putBlob(sha256, own, jobId);
    }
  } catch (err) {
    await store.releaseBlobs(jobId).catch(() => undefined);
    throw err;
  }
}
