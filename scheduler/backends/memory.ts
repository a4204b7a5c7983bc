// The embedded defaults: an in-memory state store and ready queue for a one-machine cluster.
import { resourceExhausted } from "../../common/errors.js";
import type { BlobRefShape, KernelRegistration, QueuedTask, StateStore, StoredKernel, StoredResult, TaskQueue } from "./types.js";

export class MemoryStateStore implements StateStore {
  readonly kind = "memory";
  private readonly kernels = new Map<string, StoredKernel>();
  private readonly jobMeta = new Map<string, string>();
  private readonly results = new Map<string, Map<number, StoredResult>>();
  private readonly inputs = new Map<string, Buffer[]>();
  /** Finished job ids in the order they finished (a Set keeps insertion order). */
  private readonly finished = new Set<string>();
  /** Insertion-ordered, so the oldest entry is dropped first when the cache is full. */
  private readonly cache = new Map<string, Buffer>();
  private cacheBytes = 0;
  private readonly inputRefs = new Map<string, (BlobRefShape | null)[]>();
  /** sha256 → the bytes and the jobs holding them; job → the blobs it holds. */
  private readonly blobs = new Map<string, { data: Buffer; holders: Set<string> }>();
  private readonly blobsOfJob = new Map<string, Set<string>>();
  private blobBytes = 0;
  /** Outputs stored by reference: job → name → ref and bytes (counted in blobBytes; they go with the job's results). */
  private readonly outputs = new Map<string, Map<string, { ref: BlobRefShape; data: Buffer }>>();
  /** Outputs being uploaded, in pieces (counted in blobBytes too). */
  private readonly uploads = new Map<string, Buffer[]>();

  /**
   * The cache is bounded by entries and by bytes, so large outputs cannot exhaust the scheduler's
   * heap; so are the blobs (maxBlobBytes), dropped with the last job that holds them.
   */
  constructor(
    private readonly maxCacheEntries = 100_000,
    private readonly maxCacheBytes = 256 * 1024 * 1024,
    private readonly maxBlobBytes = 2 * 1024 * 1024 * 1024,
  ) {}

  /** Bytes of blobs held now. */
  get storedBlobBytes(): number {
    return this.blobBytes;
  }

  async putBlob(sha256: string, data: Buffer, jobId: string): Promise<void> {
    let blob = this.blobs.get(sha256);
    if (!blob) {
      if (this.blobBytes + data.byteLength > this.maxBlobBytes) {
        throw resourceExhausted(`the scheduler holds ${this.blobBytes} bytes of stored inputs; ${data.byteLength} more would pass blobStoreBytes (${this.maxBlobBytes}); retry once running jobs finish`);
      }
      blob = { data, holders: new Set() };
      this.blobs.set(sha256, blob);
      this.blobBytes += data.byteLength;
    }
    blob.holders.add(jobId);
    let held = this.blobsOfJob.get(jobId);
    if (!held) this.blobsOfJob.set(jobId, (held = new Set()));
    held.add(sha256);
  }

  async readBlob(sha256: string, offset: number, length: number): Promise<Buffer | undefined> {
    const blob = this.blobs.get(sha256);
    return blob?.data.subarray(offset, offset + length);
  }

  async releaseBlobs(jobId: string): Promise<void> {
    for (const sha of this.blobsOfJob.get(jobId) ?? []) {
      const blob = this.blobs.get(sha);
      if (!blob) continue;
      blob.holders.delete(jobId);
      if (blob.holders.size === 0) {
        this.blobs.delete(sha);
        this.blobBytes -= blob.data.byteLength;
      }
    }
    this.blobsOfJob.delete(jobId);
  }

  async appendUpload(uploadId: string, data: Buffer): Promise<void> {
    if (this.blobBytes + data.byteLength > this.maxBlobBytes) {
      throw resourceExhausted(`the scheduler holds ${this.blobBytes} bytes of stored inputs and outputs; ${data.byteLength} more would pass blobStoreBytes (${this.maxBlobBytes}); retry once jobs finish or their results are dropped`);
    }
    let parts = this.uploads.get(uploadId);
    if (!parts) this.uploads.set(uploadId, (parts = []));
    parts.push(Buffer.from(data)); // its own copy: the piece's message buffer is not kept alive
    this.blobBytes += data.byteLength;
  }

  async dropUpload(uploadId: string): Promise<void> {
    for (const p of this.uploads.get(uploadId) ?? []) this.blobBytes -= p.byteLength;
    this.uploads.delete(uploadId);
  }

  async putOutput(jobId: string, name: string, ref: BlobRefShape, uploadId: string): Promise<boolean> {
    const parts = this.uploads.get(uploadId) ?? [];
    const byName = this.outputs.get(jobId) ?? new Map<string, { ref: BlobRefShape; data: Buffer }>();
    if (!this.inputs.has(jobId) || byName.has(name)) {
      await this.dropUpload(uploadId);
      return this.inputs.has(jobId);
    }
    this.uploads.delete(uploadId); // its bytes stay counted, now as the output's
    byName.set(name, { ref, data: parts.length === 1 ? parts[0]! : Buffer.concat(parts) });
    this.outputs.set(jobId, byName);
    return true;
  }

  async getOutputRef(jobId: string, name: string): Promise<BlobRefShape | undefined> {
    return this.outputs.get(jobId)?.get(name)?.ref;
  }

  async readOutput(jobId: string, name: string, offset: number, length: number): Promise<Buffer | undefined> {
    return this.outputs.get(jobId)?.get(name)?.data.subarray(offset, offset + length);
  }

  async putKernel(kernel: StoredKernel): Promise<{ created: boolean }> {
    if (this.kernels.has(kernel.kernelId)) return { created: false };
    this.kernels.set(kernel.kernelId, kernel);
    return { created: true };
  }

  async getKernel(kernelId: string): Promise<StoredKernel | undefined> {
    return this.kernels.get(kernelId);
  }

  /** tenant → kernelId → registration. */
  private readonly registrations = new Map<string, Map<string, KernelRegistration>>();

  async putKernelRegistration(reg: KernelRegistration): Promise<{ created: boolean } | undefined> {
    if (!this.kernels.has(reg.kernelId)) return undefined;
    let byId = this.registrations.get(reg.tenant);
    if (!byId) this.registrations.set(reg.tenant, (byId = new Map()));
    const old = byId.get(reg.kernelId);
    if (old) {
      old.lastUsedAtMs = Math.max(old.lastUsedAtMs, reg.lastUsedAtMs);
      return { created: false };
    }
    byId.set(reg.kernelId, { ...reg });
    return { created: true };
  }

  async getKernelRegistration(tenant: string, kernelId: string): Promise<KernelRegistration | undefined> {
    const r = this.registrations.get(tenant)?.get(kernelId);
    return r && { ...r };
  }

  async listKernelRegistrations(tenant: string): Promise<KernelRegistration[]> {
    return [...(this.registrations.get(tenant)?.values() ?? [])].map((r) => ({ ...r }));
  }

  async touchKernelRegistration(tenant: string, kernelId: string, atMs: number): Promise<void> {
    const r = this.registrations.get(tenant)?.get(kernelId);
    if (r) r.lastUsedAtMs = Math.max(r.lastUsedAtMs, atMs);
  }

  async deleteKernelRegistration(tenant: string, kernelId: string): Promise<{ deleted: boolean; contentDeleted: boolean }> {
    const byId = this.registrations.get(tenant);
    if (!byId?.delete(kernelId)) return { deleted: false, contentDeleted: false };
    if (byId.size === 0) this.registrations.delete(tenant);
    for (const other of this.registrations.values()) if (other.has(kernelId)) return { deleted: true, contentDeleted: false };
    this.kernels.delete(kernelId);
    return { deleted: true, contentDeleted: true };
  }

  async staleKernelRegistrations(unusedSinceMs: number, limit: number): Promise<{ tenant: string; kernelId: string }[]> {
    const stale: KernelRegistration[] = [];
    for (const byId of this.registrations.values()) for (const r of byId.values()) if (r.lastUsedAtMs < unusedSinceMs) stale.push(r);
    return stale
      .sort((a, b) => a.lastUsedAtMs - b.lastUsedAtMs)
      .slice(0, limit)
      .map((r) => ({ tenant: r.tenant, kernelId: r.kernelId }));
  }

  async putJobMeta(jobId: string, meta: string): Promise<void> {
    this.jobMeta.set(jobId, meta);
  }

  async getJobMeta(jobId: string): Promise<string | undefined> {
    return this.jobMeta.get(jobId);
  }

  async recordResult(jobId: string, result: StoredResult): Promise<boolean> {
    let byTask = this.results.get(jobId);
    if (!byTask) this.results.set(jobId, (byTask = new Map()));
    if (byTask.has(result.taskIndex)) return false;
    byTask.set(result.taskIndex, result);
    return true;
  }

  async getResults(jobId: string, offset: number, limit: number): Promise<StoredResult[]> {
    const byTask = this.results.get(jobId);
    if (!byTask) return [];
    if (limit < byTask.size) {
      // A page (or one result) of a large job: look up its indexes, in order, rather than scan and
      // sort every result the job has (the scan made reading a job's results quadratic).
      const out: StoredResult[] = [];
      for (let i = Math.max(0, offset); i < offset + limit; i++) {
        const r = byTask.get(i);
        if (r) out.push(r);
      }
      return out;
    }
    return [...byTask.values()]
      .filter((r) => r.taskIndex >= offset && r.taskIndex < offset + limit)
      .sort((a, b) => a.taskIndex - b.taskIndex);
  }

  async deleteJob(jobId: string): Promise<void> {
    this.finished.delete(jobId);
    this.jobMeta.delete(jobId);
    this.results.delete(jobId);
    this.inputs.delete(jobId);
    this.inputRefs.delete(jobId);
    await this.releaseBlobs(jobId);
    for (const { data } of this.outputs.get(jobId)?.values() ?? []) this.blobBytes -= data.byteLength;
    this.outputs.delete(jobId);
  }

  async putJob(jobId: string, inputs: Buffer[], meta: string, inputRefs?: (BlobRefShape | null)[]): Promise<void> {
    this.inputs.set(jobId, inputs);
    if (inputRefs) this.inputRefs.set(jobId, inputRefs);
    this.jobMeta.set(jobId, meta);
  }

  async getJobInputs(jobId: string): Promise<Buffer[] | undefined> {
    return this.inputs.get(jobId);
  }

  async getJobInputRefs(jobId: string): Promise<(BlobRefShape | null)[] | undefined> {
    return this.inputRefs.get(jobId);
  }

  async unfinishedJobs(): Promise<string[]> {
    return [...this.inputs.keys()];
  }

  async markJobFinished(jobId: string): Promise<void> {
    this.inputs.delete(jobId);
    this.inputRefs.delete(jobId);
    await this.releaseBlobs(jobId);
    this.finished.delete(jobId);
    this.finished.add(jobId);
  }

  async trimFinishedJobs(keep: number): Promise<void> {
    // Oldest first (insertion order); nothing here expires by itself, so the data goes too.
    for (const id of [...this.finished].slice(0, Math.max(0, this.finished.size - Math.max(0, keep)))) await this.deleteJob(id);
  }

  async finishedJobs(limit: number): Promise<string[]> {
    return [...this.finished].reverse().slice(0, Math.max(0, limit));
  }

  async getCachedResults(keys: string[]): Promise<(Buffer | undefined)[]> {
    return keys.map((k) => this.cache.get(k));
  }

  async putCachedResult(key: string, output: Buffer): Promise<void> {
    if (this.maxCacheEntries <= 0 || output.byteLength > this.maxCacheBytes) return;
    const old = this.cache.get(key);
    if (old) {
      this.cacheBytes -= old.byteLength;
      this.cache.delete(key);
    }
    this.cache.set(key, output);
    this.cacheBytes += output.byteLength;
    while (this.cache.size > this.maxCacheEntries || this.cacheBytes > this.maxCacheBytes) {
      const oldest = this.cache.keys().next().value!;
      this.cacheBytes -= this.cache.get(oldest)!.byteLength;
      this.cache.delete(oldest);
    }
  }

  async close(): Promise<void> {}
}

interface JobQueue {
  jobId: string;
  priority: number;
  seq: number;
  items: number[];
  head: number;
}

export class MemoryTaskQueue implements TaskQueue {
  readonly kind = "memory";
  private readonly byJob = new Map<string, JobQueue>();
  private order: JobQueue[] = [];
  private seq = 0;
  private count = 0;

  pushJob(jobId: string, priority: number, taskIndexes: Iterable<number>): void {
    let q = this.byJob.get(jobId);
    if (!q) {
      q = { jobId, priority, seq: this.seq++, items: [], head: 0 };
      this.byJob.set(jobId, q);
      this.order.push(q);
      this.order.sort((a, b) => b.priority - a.priority || a.seq - b.seq);
    }
    for (const i of taskIndexes) {
      q.items.push(i);
      this.count++;
    }
  }

  pushFront(task: QueuedTask): void {
    const q = this.byJob.get(task.jobId);
    if (!q) {
      this.pushJob(task.jobId, 0, [task.taskIndex]);
      return;
    }
    if (q.head > 0) q.items[--q.head] = task.taskIndex;
    else q.items.unshift(task.taskIndex);
    this.count++;
  }

  jobs(): string[] {
    return this.order.filter((q) => q.items.length > q.head).map((q) => q.jobId);
  }

  take(jobId: string, max: number): number[] {
    const q = this.byJob.get(jobId);
    if (!q || max <= 0) return [];
    const end = Math.min(q.items.length, q.head + max);
    const out = q.items.slice(q.head, end);
    q.head = end;
    this.count -= out.length;
    if (q.head === q.items.length) {
      q.items = [];
      q.head = 0;
    } else if (q.head > 1024 && q.head * 2 > q.items.length) {
      q.items = q.items.slice(q.head);
      q.head = 0;
    }
    return out;
  }

  removeJob(jobId: string): number {
    const q = this.byJob.get(jobId);
    if (!q) return 0;
    const removed = q.items.length - q.head;
    this.count -= removed;
    this.byJob.delete(jobId);
    this.order = this.order.filter((o) => o !== q);
    return removed;
  }

  size(): number {
    return this.count;
  }
}
