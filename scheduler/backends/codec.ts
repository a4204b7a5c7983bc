// Compact binary framing shared by the Redis store and the Kafka bus: a list of buffers as
// [u32 count][u32 length…][bytes…], and a JSON header followed by such a list.
import { createHash } from "node:crypto";
import { sha256Once } from "../../common/hash.js";

export function encodeBuffers(list: readonly Uint8Array[]): Buffer {
  const head = Buffer.allocUnsafe(4 + 4 * list.length);
  head.writeUInt32BE(list.length, 0);
  list.forEach((b, i) => head.writeUInt32BE(b.byteLength, 4 + 4 * i));
  return Buffer.concat([head, ...list.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength))]);
}

export function decodeBuffers(buf: Buffer): Buffer[] {
  if (buf.length < 4) throw new Error("truncated buffer list");
  const n = buf.readUInt32BE(0);
  let at = 4 + 4 * n;
  if (at > buf.length) throw new Error("truncated buffer list");
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const len = buf.readUInt32BE(4 + 4 * i);
    if (at + len > buf.length) throw new Error("truncated buffer list");
    out.push(buf.subarray(at, at + len));
    at += len;
  }
  return out;
}

export function encodeFramed(header: unknown, buffers: readonly Uint8Array[]): Buffer {
  // One allocation: this runs once per task result.
  const json = JSON.stringify(header);
  const jsonBytes = Buffer.byteLength(json);
  let size = 4 + jsonBytes + 4 + 4 * buffers.length;
  for (const b of buffers) size += b.byteLength;
  const out = Buffer.allocUnsafe(size);
  out.writeUInt32BE(jsonBytes, 0);
  out.write(json, 4, "utf8");
  let at = 4 + jsonBytes;
  out.writeUInt32BE(buffers.length, at);
  at += 4;
  for (const b of buffers) {
    out.writeUInt32BE(b.byteLength, at);
    at += 4;
  }
  for (const b of buffers) {
    out.set(b, at);
    at += b.byteLength;
  }
  return out;
}

export function decodeFramed<T>(buf: Buffer): { header: T; buffers: Buffer[] } {
  const n = buf.readUInt32BE(0);
  return { header: JSON.parse(buf.subarray(4, 4 + n).toString("utf8")) as T, buffers: decodeBuffers(buf.subarray(4 + n)) };
}

/**
 * The result-cache key. A kernel sees its input and a seed (task index + 1), so both are part of
 * the key: two tasks hit the same entry only when the kernel could not tell them apart.
 */
export function resultCacheKey(kernelId: string, seed: number, input: Uint8Array): string {
  const h = createHash("sha256");
  const s = Buffer.allocUnsafe(4);
  s.writeUInt32BE(seed >>> 0, 0);
  // Over the input's digest, not its bytes: the input was hashed once already at submit (sha256Once).
  h.update(s).update(sha256Once(input), "hex");
  return `${kernelId}:${h.digest("hex")}`;
}
