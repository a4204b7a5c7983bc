// The Redis state store's blobs (inputs by reference, shared inputs): P:blob:<sha256> holds the
// bytes once, P:blob:<sha256>:jobs the jobs holding them, P:job:<id>:blobs what a job holds. The
// bytes go with their last holder, in one script, so a release never races a new hold.
import type { Redis } from "ioredis";

// A job's hold on a blob; answers whether the bytes are there already (then they are not sent again).
const HOLD_BLOB = `
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[2])
return redis.call('EXISTS', KEYS[1])`;

// Drops the job's holds; a blob no job holds any more goes. KEYS[1] = the job's blob set,
// ARGV[1] = the job id, ARGV[2] = the blob key prefix.
const RELEASE_BLOBS = `
for _, sha in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local holders = ARGV[2] .. sha .. ':jobs'
  redis.call('SREM', holders, ARGV[1])
  if redis.call('SCARD', holders) == 0 then redis.call('DEL', ARGV[2] .. sha, holders) end
end
redis.call('DEL', KEYS[1])
return 1`;

export class RedisBlobs {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** The key of the set of blobs a job holds. */
    private readonly jobBlobsKey: (jobId: string) => string,
  ) {}

  private key(sha256: string): string {
    return `${this.prefix}:blob:${sha256}`;
  }

  async put(sha256: string, data: Buffer, jobId: string): Promise<void> {
    // The hold first: once it is there, no release can drop the bytes written after it.
    const present = await this.redis.eval(HOLD_BLOB, 3, this.key(sha256), `${this.key(sha256)}:jobs`, this.jobBlobsKey(jobId), jobId, sha256);
    if (present !== 1) await this.redis.set(this.key(sha256), data);
  }

  async read(sha256: string, offset: number, length: number): Promise<Buffer | undefined> {
    if (length <= 0) return (await this.redis.exists(this.key(sha256))) ? Buffer.alloc(0) : undefined;
    const bytes = await this.redis.getrangeBuffer(this.key(sha256), offset, offset + length - 1);
    // GETRANGE answers "" for a missing key as for a range past the end: tell them apart.
    if (bytes.byteLength === 0 && !(await this.redis.exists(this.key(sha256)))) return undefined;
    return bytes;
  }

  async release(jobId: string): Promise<void> {
    await this.redis.eval(RELEASE_BLOBS, 1, this.jobBlobsKey(jobId), jobId, `${this.prefix}:blob:`);
  }
}
