// The Redis state store's outputs by reference: P:job:<id>:out:<name> holds an uploaded output's
// bytes (name = "<task>.<attempt>", one per attempt), P:job:<id>:outs maps each name to its ref.
// An upload is appended piece by piece to P:upload:<id> (expiring unless committed) and renamed
// into place once the scheduler has checked its hash.
// An output is kept only while the job is unfinished (checked in the same script that writes it),
// and once it finishes every output key gets the results' TTL: outputs go when results do, and
// a late upload can never leave bytes without an expiry.
import type { Redis } from "ioredis";
import { status } from "@grpc/grpc-js";
import { DistributeXError } from "../../common/errors.js";
import type { BlobRefShape } from "./types.js";

// KEYS: the unfinished set, the job's outs hash, the upload's key, the output's key. ARGV: job id, name, ref JSON, size.
// A name kept already keeps its first output. Otherwise the upload must hold exactly its size:
// a piece lost in Redis (the key evicted, flushed or expired mid-way, so later APPENDs started a
// new one) must never be kept as the output. Checked before HSETNX, so a failed commit never
// leaves a ref without its bytes.
const PUT_OUTPUT = `
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then redis.call('DEL', KEYS[3]) return 0 end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then redis.call('DEL', KEYS[3]) return 1 end
if redis.call('STRLEN', KEYS[3]) ~= tonumber(ARGV[4]) then redis.call('DEL', KEYS[3]) return 2 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('RENAME', KEYS[3], KEYS[4])
redis.call('PERSIST', KEYS[4])
return 1`;

// KEYS: the upload's key. ARGV: the piece, ttl in ms. One script rather than MULTI: a refused
// APPEND (maxmemory, ACL) then fails with its own error, not an EXECABORT that hides it.
const APPEND_PIECE = `
redis.call('APPEND', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

/** An upload no one commits (its scheduler died mid-way) goes by itself this long after its last piece. */
const UPLOAD_TTL_MS = 10 * 60 * 1000;

// KEYS: the job's outs hash. ARGV: ttl in seconds, the output key prefix.
const EXPIRE_OUTPUTS = `
for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do redis.call('EXPIRE', ARGV[2] .. name, ARGV[1]) end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1`;

export class RedisOutputs {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private outs(jobId: string): string {
    return `${this.prefix}:job:${jobId}:outs`;
  }

  private key(jobId: string, name: string): string {
    return `${this.prefix}:job:${jobId}:out:${name}`;
  }

  private upload(uploadId: string): string {
    return `${this.prefix}:upload:${uploadId}`;
  }

  async append(uploadId: string, data: Buffer): Promise<void> {
    await this.redis.eval(APPEND_PIECE, 1, this.upload(uploadId), data, UPLOAD_TTL_MS);
  }

  async drop(uploadId: string): Promise<void> {
    await this.redis.del(this.upload(uploadId));
  }

  async put(jobId: string, name: string, ref: BlobRefShape, uploadId: string): Promise<boolean> {
    const keys = [`${this.prefix}:jobs:unfinished`, this.outs(jobId), this.upload(uploadId), this.key(jobId, name)];
    const kept = await this.redis.eval(PUT_OUTPUT, 4, ...keys, jobId, name, JSON.stringify(ref), ref.sizeBytes);
    if (kept === 2) throw new DistributeXError(status.UNAVAILABLE, `Redis lost part of the upload of output ${name} of job ${jobId} (evicted or flushed mid-way); nothing was kept; retry is safe`);
    return kept === 1;
  }

  async ref(jobId: string, name: string): Promise<BlobRefShape | undefined> {
    const json = await this.redis.hget(this.outs(jobId), name);
    return json ? (JSON.parse(json) as BlobRefShape) : undefined;
  }

  async read(jobId: string, name: string, offset: number, length: number): Promise<Buffer | undefined> {
    const key = this.key(jobId, name);
    if (length <= 0) return (await this.redis.exists(key)) ? Buffer.alloc(0) : undefined;
    const bytes = await this.redis.getrangeBuffer(key, offset, offset + length - 1);
    // GETRANGE answers "" for a missing key as for a range past the end: tell them apart.
    if (bytes.byteLength === 0 && !(await this.redis.exists(key))) return undefined;
    return bytes;
  }

  /** The job finished: its outputs expire with its results. */
  async expire(jobId: string, ttlS: number): Promise<void> {
    await this.redis.eval(EXPIRE_OUTPUTS, 1, this.outs(jobId), ttlS, `${this.prefix}:job:${jobId}:out:`);
  }
}
