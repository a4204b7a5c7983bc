import { createHash } from "node:crypto";

export const sha256Hex = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

export const isKernelId = (id: string): boolean => /^[0-9a-f]{64}$/.test(id);

/**
 * sha256 (hex) of buffers whose digest is known: computed once per buffer and reused by every
 * check that needs one (the duplicate check's fingerprint, blob references, result-cache keys),
 * or set by SubmitJobStream, which hashes each blob as it arrives. Keyed by the buffer object, so
 * only for bytes never written after they arrived (submitted inputs).
 */
export const knownSha256 = new WeakMap<Uint8Array, string>();

/**
 * Buffers that are written again after they were read (the agent's recycled output buffers:
 * agent/wasm/output-pool.ts). A digest cached for a view of one would go stale when the buffer is
 * reused, and a stale digest would pass for the new bytes in duplicate checks, blob references
 * and result-cache keys: sha256Once hashes their views afresh every time and caches nothing.
 */
const rewritten = new WeakSet<ArrayBufferLike>();

/** Marks `buffer` as one that is written again later (see sha256Once): every view of it, now and before. */
export function markRewritten(buffer: ArrayBufferLike): void {
  rewritten.add(buffer);
}

/** The buffer's sha256 hex, hashed at most once (see knownSha256), or every time over a rewritten buffer. */
export function sha256Once(bytes: Uint8Array): string {
  // Checked before the cache: a view hashed before its buffer was marked has a digest that may be stale now.
  if (rewritten.has(bytes.buffer)) return sha256Hex(bytes);
  let hex = knownSha256.get(bytes);
  if (hex === undefined) knownSha256.set(bytes, (hex = sha256Hex(bytes)));
  return hex;
}
