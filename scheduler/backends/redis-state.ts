// The Redis state store: kernels, job metadata and inputs, results (recorded exactly once with
// HSETNX), the result cache and the node registry cache, with TTLs on whatever should expire.
//
// Keys (prefix P, default "distx"):
//   P:kernel:<id>          hash {meta, module}              no TTL (jobs refer to it)
//   P:job:<id>:meta        JSON of the job (no tasks)        TTL resultTtlS once finished
//   P:job:<id>:inputs      framed task inputs                deleted when the job finishes
//   P:job:<id>:results     hash taskIndex → framed result    TTL resultTtlS once finished
//   P:jobs:unfinished      zset jobId → submittedAtMs        (read at start to resume)
//   P:jobs:finished        zset jobId → finishedAtMs         (read at start: finished jobs stay visible)
//   P:rc:<kernel>:<hash>   cached output                     TTL resultCacheTtlS
//   P:node:<id>            JSON snapshot of an agent         TTL a few heartbeats
//   P:scheduler:consumer-group  the active scheduler's Kafka consumer group (its offsets)
//   P:scheduler:consumer-start  hash topic:partition → the offset that group started from
//   P:kreg:<tenant>        hash kernelId → registration JSON (a tenant's kernels)
//   P:kernel:<id>:tenants  set of tenants holding the kernel (its bytes go with the last one)
//   P:kused                zset "<tenant>/<kernelId>" → last use (kernel expiry reads it)
//   P:job:<id>:refs        JSON: which inputs are stored by reference   deleted when the job finishes
//   P:job:<id>:blobs       set of sha256 the job holds                  deleted when the job finishes
//   P:blob:<sha256>        a blob's bytes (input by reference, shared input)  deleted with its last holder
//   P:blob:<sha256>:jobs   set of jobs holding it
//   P:job:<id>:outs        hash "<task>.<attempt>" → ref JSON of outputs by reference   TTL resultTtlS once finished
//   P:job:<id>:out:<name>  an output's bytes                                      TTL resultTtlS once finished
//   P:upload:<id>          an output being uploaded, in pieces                    TTL 10 min, renamed into place when checked
// (This file is longer than 350 lines because it is the one place that lays out every key of the
// Redis state store, above; the blob scripts live in redis-blobs.ts.)
import { Redis } from "ioredis";
import { connectRedis } from "./redis-connection.js";
import { decodeBuffers, decodeFramed } from "./codec.js";
import { PreparedScript, type PreparedArg } from "./redis-prepared.js";
import type { BlobRefShape, KernelRegistration, SharedStoreCapability, StateStore, StoredKernel, StoredResult } from "./types.js";
import type { ConsumerGroupHandoff } from "./bus.js";
import { RedisBlobs } from "./redis-blobs.js";
import { RedisOutputs } from "./redis-outputs.js";

// Registration and deletion are scripts, so that "the bytes go with the last registration" can
// never race a new registration into pointing at deleted bytes.
const PUT_REGISTRATION = `
if redis.call('HEXISTS', KEYS[1], 'meta') == 0 then return -1 end
local created = redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
local old = tonumber(redis.call('ZSCORE', KEYS[4], ARGV[4]) or '0')
if tonumber(ARGV[5]) > old then redis.call('ZADD', KEYS[4], ARGV[5], ARGV[4]) end
return created`;

const DELETE_REGISTRATION = `
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('SREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[3])
if redis.call('SCARD', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[4], KEYS[2])
  return 2
end
return 1`;

// Only raises the last-use time, and only of a registration that still exists.
const TOUCH_REGISTRATION = `
local old = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not old then return 0 end
if tonumber(ARGV[2]) > tonumber(old) then redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1]) end
return 1`;

// putJob: inputs, refs (when any: "" is never a JSON array), meta, then the unfinished set.
const PUT_JOB = new PreparedScript(`
redis.call('SET', KEYS[1], ARGV[1])
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2]) end
redis.call('SET', KEYS[3], ARGV[3])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[5])
return 1`);

// HSETNX of field/value pairs into one hash; 1 per pair that was set, 0 per pair already there.
const HSETNX_MANY = new PreparedScript("local won = {} for i = 1, #ARGV, 2 do won[#won + 1] = redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) end return won");

export interface RedisStateOptions {
  url: string;
  prefix?: string;
  resultTtlS?: number;
  resultCacheTtlS?: number;
  /** A Redis that does not answer this fast at start is reported as a configuration error. */
  connectTimeoutMs?: number;
  /** PEM CA that must have signed Redis's certificate (rediss://). */
  caFile?: string | undefined;
}

interface ResultHeader {
  taskIndex: number;
  state: StoredResult["state"];
  error?: StoredResult["error"];
  nodeId: string;
  attempt: number;
  runMs: number;
  backend?: string;
  outputRef?: BlobRefShape;
  /** In the JSON header: sanitised lines hold no control characters, and are bounded (≤ 33 KiB). */
  logs?: string[];
}

export class RedisStateStore implements StateStore, SharedStoreCapability {
  readonly kind = "redis";
  /** Shared by every scheduler on this Redis: its connection and node cache (types.ts). */
  get shared(): SharedStoreCapability {
    return this;
  }
  private readonly p: string;
  private readonly resultTtlS: number;
  private readonly cacheTtlS: number;
  /** Blobs (inputs by reference, shared inputs) and the jobs holding them: redis-blobs.ts. */
  private readonly blobs: RedisBlobs;
  /** Outputs by reference, kept with the job's results: redis-outputs.ts. */
  private readonly outputs: RedisOutputs;

  private constructor(
    readonly redis: Redis,
    options: RedisStateOptions,
  ) {
    this.p = options.prefix ?? "distx";
    this.resultTtlS = options.resultTtlS ?? 7 * 86400;
    this.cacheTtlS = options.resultCacheTtlS ?? 86400;
    this.blobs = new RedisBlobs(redis, this.p, (jobId) => this.job(jobId, "blobs"));
    this.outputs = new RedisOutputs(redis, this.p);
  }

  static async connect(options: RedisStateOptions): Promise<RedisStateStore> {
    const redis = await connectRedis(options.url, options.connectTimeoutMs ?? 5000, "distx-state", options.caFile);
    return new RedisStateStore(redis, options);
  }

  private job(jobId: string, part: "meta" | "inputs" | "results" | "refs" | "blobs"): string {
    return `${this.p}:job:${jobId}:${part}`;
  }

  async putKernel(kernel: StoredKernel): Promise<{ created: boolean }> {
    const { module, ...meta } = kernel;
    const key = `${this.p}:kernel:${kernel.kernelId}`;
    // Module first, then meta with HSETNX: a kernel is visible only once both are there.
    await this.redis.hset(key, "module", module);
    const created = await this.redis.hsetnx(key, "meta", JSON.stringify(meta));
    return { created: created === 1 };
  }

  async getKernel(kernelId: string): Promise<StoredKernel | undefined> {
    const [meta, module] = await this.redis.hmgetBuffer(`${this.p}:kernel:${kernelId}`, "meta", "module");
    if (!meta || !module) return undefined;
    return { ...(JSON.parse(meta.toString("utf8")) as Omit<StoredKernel, "module">), module };
  }

  private kreg(tenant: string): string {
    return `${this.p}:kreg:${tenant}`;
  }

  async putKernelRegistration(reg: KernelRegistration): Promise<{ created: boolean } | undefined> {
    const { lastUsedAtMs, ...rest } = reg;
    const r = (await this.redis.eval(
      PUT_REGISTRATION,
      4,
      `${this.p}:kernel:${reg.kernelId}`,
      this.kreg(reg.tenant),
      `${this.p}:kernel:${reg.kernelId}:tenants`,
      `${this.p}:kused`,
      reg.kernelId,
      JSON.stringify(rest),
      reg.tenant,
      `${reg.tenant}/${reg.kernelId}`,
      String(lastUsedAtMs),
    )) as number;
    return r === -1 ? undefined : { created: r === 1 };
  }

  async getKernelRegistration(tenant: string, kernelId: string): Promise<KernelRegistration | undefined> {
    const [raw, used] = await Promise.all([this.redis.hget(this.kreg(tenant), kernelId), this.redis.zscore(`${this.p}:kused`, `${tenant}/${kernelId}`)]);
    if (!raw) return undefined;
    const r = JSON.parse(raw) as Omit<KernelRegistration, "lastUsedAtMs">;
    return { ...r, lastUsedAtMs: used === null ? r.registeredAtMs : Number(used) };
  }

  async listKernelRegistrations(tenant: string): Promise<KernelRegistration[]> {
    const all = await this.redis.hvals(this.kreg(tenant));
    if (all.length === 0) return [];
    const regs = all.map((raw) => JSON.parse(raw) as Omit<KernelRegistration, "lastUsedAtMs">);
    const used = await this.redis.zmscore(`${this.p}:kused`, ...regs.map((r) => `${tenant}/${r.kernelId}`));
    return regs.map((r, i) => ({ ...r, lastUsedAtMs: used[i] == null ? r.registeredAtMs : Number(used[i]) }));
  }

  async touchKernelRegistration(tenant: string, kernelId: string, atMs: number): Promise<void> {
    await this.redis.eval(TOUCH_REGISTRATION, 1, `${this.p}:kused`, `${tenant}/${kernelId}`, String(atMs));
  }

  async deleteKernelRegistration(tenant: string, kernelId: string): Promise<{ deleted: boolean; contentDeleted: boolean }> {
    const r = (await this.redis.eval(
      DELETE_REGISTRATION,
      4,
      this.kreg(tenant),
      `${this.p}:kernel:${kernelId}:tenants`,
      `${this.p}:kused`,
      `${this.p}:kernel:${kernelId}`,
      kernelId,
      tenant,
      `${tenant}/${kernelId}`,
    )) as number;
    return { deleted: r > 0, contentDeleted: r === 2 };
  }

  async staleKernelRegistrations(unusedSinceMs: number, limit: number): Promise<{ tenant: string; kernelId: string }[]> {
    const members = await this.redis.zrangebyscore(`${this.p}:kused`, "-inf", `(${unusedSinceMs}`, "LIMIT", 0, limit);
    return members.map((m) => {
      const slash = m.indexOf("/");
      return { tenant: m.slice(0, slash), kernelId: m.slice(slash + 1) };
    });
  }

  /** The active scheduler's Kafka consumer group (see ConsumerGroupHandoff). */
  consumerGroupHandoff(): ConsumerGroupHandoff {
    const key = `${this.p}:scheduler:consumer-group`;
    const startKey = `${this.p}:scheduler:consumer-start`;
    return {
      previous: async () => (await this.redis.get(key)) ?? undefined,
      startOffsets: async () => new Map(Object.entries(await this.redis.hgetall(startKey))),
      // One transaction: the group is never recorded without the offsets it starts from.
      record: async (groupId, start) => {
        const tx = this.redis.multi().del(startKey);
        if (start.size > 0) tx.hset(startKey, Object.fromEntries(start));
        await tx.set(key, groupId).exec();
      },
    };
  }

  async putJobMeta(jobId: string, meta: string): Promise<void> {
    await this.redis.set(this.job(jobId, "meta"), meta);
  }

  async getJobMeta(jobId: string): Promise<string | undefined> {
    return (await this.redis.get(this.job(jobId, "meta"))) ?? undefined;
  }

  /**
   * Results recorded in the same moment (one batch of task events) go to Redis as one script
   * call per job: HSETNX for each, so each is still recorded exactly once, at a fraction of
   * the per-command cost.
   */
  private pendingResults = new Map<string, { fields: PreparedArg[]; settle: ((won: boolean) => void)[]; fail: ((err: Error) => void)[] }>();
  private resultsFlushQueued = false;

  recordResult(jobId: string, result: StoredResult): Promise<boolean> {
    const { output, ...header } = result;
    let batch = this.pendingResults.get(jobId);
    if (!batch) {
      batch = { fields: [], settle: [], fail: [] };
      this.pendingResults.set(jobId, batch);
    }
    // Framed as encodeFramed frames it, straight into the command's bytes (redis-prepared.ts).
    batch.fields.push(String(result.taskIndex), { json: JSON.stringify(header), framed: [output] });
    const done = new Promise<boolean>((resolve, reject) => {
      batch.settle.push(resolve);
      batch.fail.push(reject);
    });
    if (!this.resultsFlushQueued) {
      this.resultsFlushQueued = true;
      queueMicrotask(() => this.flushResults());
    }
    return done;
  }

  private flushResults(): void {
    this.resultsFlushQueued = false;
    const batches = this.pendingResults;
    this.pendingResults = new Map();
    for (const [jobId, batch] of batches) {
      (HSETNX_MANY.run(this.redis, [this.job(jobId, "results")], batch.fields) as Promise<number[]>).then(
        (won) => batch.settle.forEach((resolve, i) => resolve(won[i] === 1)),
        (err: Error) => batch.fail.forEach((reject) => reject(err)),
      );
    }
  }

  async getResults(jobId: string, offset: number, limit: number): Promise<StoredResult[]> {
    const key = this.job(jobId, "results");
    let raw: (Buffer | null)[];
    if (limit <= 10_000) {
      const fields = Array.from({ length: Math.max(0, limit) }, (_, i) => String(offset + i));
      raw = fields.length ? await this.redis.hmgetBuffer(key, ...fields) : [];
    } else {
      const all = await this.redis.hgetallBuffer(key);
      raw = Object.entries(all)
        .filter(([k]) => Number(k) >= offset && Number(k) < offset + limit)
        .map(([, v]) => v);
    }
    const out: StoredResult[] = [];
    for (const buf of raw) {
      if (!buf) continue;
      const { header, buffers } = decodeFramed<ResultHeader>(buf);
      out.push({ ...header, output: buffers[0] ?? Buffer.alloc(0) });
    }
    return out.sort((a, b) => a.taskIndex - b.taskIndex);
  }

  async deleteJob(jobId: string): Promise<void> {
    // Finished jobs expire by TTL: this only drops the job from the sets.
    await this.redis.multi().zrem(`${this.p}:jobs:unfinished`, jobId).zrem(`${this.p}:jobs:finished`, jobId).exec();
    await this.releaseBlobs(jobId);
  }

  async putJob(jobId: string, inputs: Buffer[], meta: string, inputRefs?: (BlobRefShape | null)[]): Promise<void> {
    // One script, one round trip: a job is never seen with metadata and no inputs (adopt() would
    // skip it as recorded, and restore() could not resume it). The inputs are framed as
    // encodeBuffers frames them, copied once into the command's bytes (redis-prepared.ts).
    const keys = [this.job(jobId, "inputs"), this.job(jobId, "refs"), this.job(jobId, "meta"), `${this.p}:jobs:unfinished`];
    await PUT_JOB.run(this.redis, keys, [{ framed: inputs }, inputRefs ? JSON.stringify(inputRefs) : "", meta, String(Date.now()), jobId]);
  }

  async getJobInputs(jobId: string): Promise<Buffer[] | undefined> {
    const buf = await this.redis.getBuffer(this.job(jobId, "inputs"));
    return buf ? decodeBuffers(buf) : undefined;
  }

  async getJobInputRefs(jobId: string): Promise<(BlobRefShape | null)[] | undefined> {
    const json = await this.redis.get(this.job(jobId, "refs"));
    return json ? (JSON.parse(json) as (BlobRefShape | null)[]) : undefined;
  }

  putBlob(sha256: string, data: Buffer, jobId: string): Promise<void> {
    return this.blobs.put(sha256, data, jobId);
  }

  readBlob(sha256: string, offset: number, length: number): Promise<Buffer | undefined> {
    return this.blobs.read(sha256, offset, length);
  }

  releaseBlobs(jobId: string): Promise<void> {
    return this.blobs.release(jobId);
  }

  appendUpload(uploadId: string, data: Buffer): Promise<void> {
    return this.outputs.append(uploadId, data);
  }

  dropUpload(uploadId: string): Promise<void> {
    return this.outputs.drop(uploadId);
  }

  putOutput(jobId: string, name: string, ref: BlobRefShape, uploadId: string): Promise<boolean> {
    return this.outputs.put(jobId, name, ref, uploadId);
  }

  getOutputRef(jobId: string, name: string): Promise<BlobRefShape | undefined> {
    return this.outputs.ref(jobId, name);
  }

  readOutput(jobId: string, name: string, offset: number, length: number): Promise<Buffer | undefined> {
    return this.outputs.read(jobId, name, offset, length);
  }

  async unfinishedJobs(): Promise<string[]> {
    return this.redis.zrange(`${this.p}:jobs:unfinished`, 0, -1);
  }

  async markJobFinished(jobId: string): Promise<void> {
    const now = Date.now();
    await this.redis
      .multi()
      .zrem(`${this.p}:jobs:unfinished`, jobId)
      .del(this.job(jobId, "inputs"))
      .del(this.job(jobId, "refs"))
      .expire(this.job(jobId, "meta"), this.resultTtlS)
      .expire(this.job(jobId, "results"), this.resultTtlS)
      // Scored by finish time; entries past the TTL go here, the rest past retention in trimFinishedJobs.
      .zadd(`${this.p}:jobs:finished`, now, jobId)
      .zremrangebyscore(`${this.p}:jobs:finished`, "-inf", now - this.resultTtlS * 1000)
      .exec();
    // After the job left the unfinished set: no output can be kept after this without the TTL.
    await this.outputs.expire(jobId, this.resultTtlS);
    await this.releaseBlobs(jobId);
  }

  async trimFinishedJobs(keep: number): Promise<void> {
    await this.redis.zremrangebyrank(`${this.p}:jobs:finished`, 0, -Math.max(0, keep) - 1); // ranks ascend by finish time
  }

  async finishedJobs(limit: number): Promise<string[]> {
    if (limit <= 0) return [];
    return this.redis.zrange(`${this.p}:jobs:finished`, 0, limit - 1, "REV");
  }

  async getCachedResults(keys: string[]): Promise<(Buffer | undefined)[]> {
    if (keys.length === 0 || this.cacheTtlS === 0) return keys.map(() => undefined);
    const out: (Buffer | undefined)[] = [];
    for (let i = 0; i < keys.length; i += 5000) {
      const chunk = keys.slice(i, i + 5000).map((k) => `${this.p}:rc:${k}`);
      for (const v of await this.redis.mgetBuffer(...chunk)) out.push(v ?? undefined);
    }
    return out;
  }

  async putCachedResult(key: string, output: Buffer): Promise<void> {
    if (this.cacheTtlS === 0) return;
    await this.redis.set(`${this.p}:rc:${key}`, output, "EX", this.cacheTtlS);
  }

  /** The node registry cache: what other schedulers and tools can read about live agents. */
  async putNode(nodeId: string, snapshot: string, ttlMs: number): Promise<void> {
    await this.redis.set(`${this.p}:node:${nodeId}`, snapshot, "PX", ttlMs);
  }

  async listNodes(): Promise<string[]> {
    const keys: string[] = [];
    let cursor = "0";
    do {
      const [next, batch] = await this.redis.scan(cursor, "MATCH", `${this.p}:node:*`, "COUNT", 500);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== "0");
    if (keys.length === 0) return [];
    return (await this.redis.mget(...keys)).filter((v): v is string => v !== null);
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
