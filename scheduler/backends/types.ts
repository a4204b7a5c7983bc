// The scheduler's backend seams, each an interface: the state store and the ready queue (here),
// the task bus (bus.ts; the agents' side is common/agent-bus.ts) and the lease (lease.ts). On one
// machine they are in memory (memory.ts, memory-bus.ts, MemoryLease); a multi-machine cluster
// uses Redis (store, lease) and Kafka (bus) behind the same interfaces, and the same contract
// tests run against every implementation. The ready queue is always in memory: each scheduler
// rebuilds it from the store's unfinished jobs when it becomes active.
import type { Redis } from "ioredis";
import type { TaskErrorShape } from "../model.js";
import type { ConsumerGroupHandoff } from "./bus.js";

/**
 * What a store shared by several schedulers offers beyond the StateStore calls: the connection
 * that tokens, node identities and the lease live on, and the node cache that standbys and the
 * dashboard read. Asked for through StateStore.shared, never by testing the store's class.
 */
export interface SharedStoreCapability {
  readonly redis: Redis;
  putNode(nodeId: string, snapshot: string, ttlMs: number): Promise<void>;
  /** Which Kafka consumer group the active scheduler's offsets are in (a failover starts from them). */
  consumerGroupHandoff(): ConsumerGroupHandoff;
}

export interface StoredKernel {
  kernelId: string;
  name: string;
  kind: "KERNEL_KIND_WASM" | "KERNEL_KIND_GPU";
  entry: string;
  abi: string;
  sizeBytes: number;
  registeredAtMs: number;
  module: Buffer;
}

/**
 * A tenant's hold on a kernel. The bytes (StoredKernel) are stored once per sha256; each tenant
 * that registers them gets its own registration, and sees only kernels it holds.
 */
export interface KernelRegistration {
  tenant: string;
  kernelId: string;
  name: string;
  sizeBytes: number;
  registeredAtMs: number;
  /** Last registration or job submission with it: what kernel expiry (kernelTtlS) looks at. */
  lastUsedAtMs: number;
}

/** A blob stored once by sha256 (an input kept by reference, or a shared input): proto BlobRef. */
export interface BlobRefShape {
  sha256: string;
  sizeBytes: number;
}

export interface StoredResult {
  taskIndex: number;
  state: "TASK_STATE_SUCCEEDED" | "TASK_STATE_FAILED" | "TASK_STATE_CANCELLED";
  output: Buffer;
  error?: TaskErrorShape;
  nodeId: string;
  attempt: number;
  runMs: number;
  /** What ran it: wasm, headlessgl or cpu (gpu.js). */
  backend?: string;
  /** The kernel's log lines (sanitised and bounded on receipt: common/kernel-log.ts boundLogLines). */
  logs?: string[];
  /** Set (and output empty) when the output is stored by reference: readOutput(job, outputName(task, attempt)). */
  outputRef?: BlobRefShape;
}

/** Where an attempt's uploaded output is kept within its job: one name per attempt, so attempts never overwrite each other. */
export const outputName = (taskIndex: number, attempt: number): string => `${taskIndex}.${attempt}`;

/** Durable-ish state: kernels, results (recorded once per task), and job metadata snapshots. */
export interface StateStore {
  readonly kind: string;
  /** Present when several schedulers share this store (a lease elects the active one); absent in memory. */
  readonly shared?: SharedStoreCapability;
  putKernel(kernel: StoredKernel): Promise<{ created: boolean }>;
  getKernel(kernelId: string): Promise<StoredKernel | undefined>;
  /**
   * Records the tenant's registration of a kernel whose bytes putKernel stored (registering again
   * counts as a use). undefined, with nothing recorded, when the bytes are not (or no longer) stored.
   */
  putKernelRegistration(reg: KernelRegistration): Promise<{ created: boolean } | undefined>;
  getKernelRegistration(tenant: string, kernelId: string): Promise<KernelRegistration | undefined>;
  /** The tenant's registrations (bounded by its kernel quota). */
  listKernelRegistrations(tenant: string): Promise<KernelRegistration[]>;
  /** A job was submitted with the kernel: it is in use as of atMs. */
  touchKernelRegistration(tenant: string, kernelId: string, atMs: number): Promise<void>;
  /** Removes the registration; the bytes go too once no tenant holds them. */
  deleteKernelRegistration(tenant: string, kernelId: string): Promise<{ deleted: boolean; contentDeleted: boolean }>;
  /** Registrations not used since unusedSinceMs, least recently used first, at most `limit`. */
  staleKernelRegistrations(unusedSinceMs: number, limit: number): Promise<{ tenant: string; kernelId: string }[]>;
  /** Stores a job's metadata (no inputs, no results). Later snapshots replace earlier ones. */
  putJobMeta(jobId: string, meta: string): Promise<void>;
  getJobMeta(jobId: string): Promise<string | undefined>;
  /** Records a task's final result. Only the first record for a task wins; returns whether this one did. */
  recordResult(jobId: string, result: StoredResult): Promise<boolean>;
  getResults(jobId: string, offset: number, limit: number): Promise<StoredResult[]>;
  deleteJob(jobId: string): Promise<void>;
  /**
   * Records a new job: its inputs (kept while it is unfinished, so that a restarted or standby
   * scheduler can resume it) and its metadata, at once: never one without the other.
   */
  putJob(jobId: string, inputs: Buffer[], meta: string, inputRefs?: (BlobRefShape | null)[]): Promise<void>;
  getJobInputs(jobId: string): Promise<Buffer[] | undefined>;
  /** Which of the job's inputs are stored by reference (null: inline in getJobInputs), as putJob recorded them. */
  getJobInputRefs(jobId: string): Promise<(BlobRefShape | null)[] | undefined>;
  /**
   * Stores a blob under the sha256 of its bytes, held by the job (the bytes are stored once
   * however many jobs hold them). RESOURCE_EXHAUSTED (retryable) when the store is full.
   */
  putBlob(sha256: string, data: Buffer, jobId: string): Promise<void>;
  /** Up to `length` bytes of a blob from `offset`; undefined when no job holds it. */
  readBlob(sha256: string, offset: number, length: number): Promise<Buffer | undefined>;
  /** The job holds its blobs no longer: a blob no job holds is dropped. markJobFinished and deleteJob do this too. */
  releaseBlobs(jobId: string): Promise<void>;
  /**
   * Appends a piece of an output being uploaded (uploadId: one per UploadOutput call), so the
   * scheduler never holds more than a piece of it. An upload never committed goes by itself
   * (Redis: 10 minutes after its last piece) or with dropUpload. With the in-memory store,
   * RESOURCE_EXHAUSTED when blobStoreBytes is full.
   */
  appendUpload(uploadId: string, data: Buffer): Promise<void>;
  dropUpload(uploadId: string): Promise<void>;
  /**
   * Keeps the upload as the output `name` (outputName) of the job, with its results: it goes when
   * they do (deleteJob; with Redis, the results' TTL once the job is finished). false, with the
   * upload dropped, when the job is not unfinished any more. A name kept already keeps its first
   * output (the upload is dropped; true).
   */
  putOutput(jobId: string, name: string, ref: BlobRefShape, uploadId: string): Promise<boolean>;
  /** What putOutput recorded under the name, or undefined. */
  getOutputRef(jobId: string, name: string): Promise<BlobRefShape | undefined>;
  /** Up to `length` bytes of a kept output from `offset`; undefined when it is not (or no longer) kept. */
  readOutput(jobId: string, name: string, offset: number, length: number): Promise<Buffer | undefined>;
  /** Ids of jobs accepted and not yet finished, oldest first (read at start to resume them). */
  unfinishedJobs(): Promise<string[]>;
  /** The job is final: drop its inputs, leave the unfinished set, let meta and results expire. */
  markJobFinished(jobId: string): Promise<void>;
  /**
   * Ids of finished jobs whose metadata is still kept, newest first, at most `limit`: a scheduler
   * that takes over loads them, so jobs finished under its predecessor still answer GetJob.
   */
  finishedJobs(limit: number): Promise<string[]>;
  /**
   * Forgets every finished job but the newest `keep` (the scheduler's retainFinishedJobs), as the
   * scheduler's memory does. A trim, not a delete of named jobs: one that failed (a fenced or
   * refused write) is made good by the next.
   */
  trimFinishedJobs(keep: number): Promise<void>;
  /** The result cache, keyed by resultCacheKey(kernel, seed, input). */
  getCachedResults(keys: string[]): Promise<(Buffer | undefined)[]>;
  putCachedResult(key: string, output: Buffer): Promise<void>;
  close(): Promise<void>;
}

export interface QueuedTask {
  jobId: string;
  taskIndex: number;
}

/**
 * The ready queue: tasks waiting for placement, grouped by job, highest priority first and
 * first-come first-served within a priority. Retries go to the front of their job.
 */
export interface TaskQueue {
  readonly kind: string;
  pushJob(jobId: string, priority: number, taskIndexes: Iterable<number>): void;
  pushFront(task: QueuedTask): void;
  /** Jobs that have queued tasks, in service order. */
  jobs(): string[];
  /** Takes up to `max` task indexes of one job off the queue. */
  take(jobId: string, max: number): number[];
  removeJob(jobId: string): number;
  size(): number;
}
