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

/** The buffer's sha256 hex, hashed at most once (see knownSha256). */
export function sha256Once(bytes: Uint8Array): string {
  let hex = knownSha256.get(bytes);
  if (hex === undefined) knownSha256.set(bytes, (hex = sha256Hex(bytes)));
  return hex;
}
