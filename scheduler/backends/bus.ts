// The message seam between scheduler and agents when they span machines: the scheduler's side
// (TaskBus). The agents' side is AgentBus (common/agent-bus.ts): the scheduler neither calls it
// nor holds its code. The in-memory bus is the one-process stand-in (the contract tests run
// against both); the Kafka bus is the real one. Delivery to the scheduler's handlers is
// at-least-once: a record counts as consumed only after its handler resolved (for Kafka: its
// offset is committed only then).
import type { ResourceNeeds, SharedInputShape } from "../model.js";
import type { BlobRefShape } from "./types.js";
import type { AssignmentIn, CancellationIn, JobSubmission, JobSubmissionIn, TaskUpdate } from "../../common/types.js";
import type { LoadSample } from "../../common/kafka-wire.js";
import type { RemoteAgentRoutes } from "../../common/agent-bus.js";
import type { RecordRejectReason, VerifyRecord } from "../../common/record-signature.js";
import type { SealRecipient } from "../../common/record-seal.js";

export interface SubmissionRecord {
  jobId: string;
  submittedAtMs: number;
  kernelId: string;
  priority: number;
  timeoutMs: number;
  maxAttempts: number;
  name: string;
  skipCache: boolean;
  needs: { cores: number; memoryBytes: number; gpu: boolean; nodeSelector: Record<string, string>; gpuFallback?: ResourceNeeds["gpuFallback"] };
  inputs: Buffer[];
  /** Inputs stored by reference (their `inputs` entry is empty); null: inline. Absent: none. */
  inputRefs?: (BlobRefShape | null)[];
  /** The job's shared inputs, stored as blobs. */
  sharedInputs?: SharedInputShape[];
  /** The client's idempotency key and the request's fingerprint (the job id is derived from the key). */
  requestId?: string;
  requestFingerprint?: string;
  unschedulable?: "UNSCHEDULABLE_WAIT" | "UNSCHEDULABLE_FAIL";
  /** The submitting token's tenant and public id (absent: default tenant / --insecure). */
  tenant?: string;
  tokenId?: string;
}

export interface TaskEventRecord {
  nodeId: string;
  update: TaskUpdate;
}

export interface BusHandlers {
  submission(rec: SubmissionRecord): Promise<void>;
  event(rec: TaskEventRecord): Promise<void>;
  load(sample: LoadSample): void;
  /** A record dropped before it reached a handler (undecodable, oversized, malformed), by topic kind. */
  rejected?(topic: "submissions" | "node-load", reason: string): void;
  /**
   * Secure clusters: proves which node wrote a task-event or node-load record (its signature),
   * before the value is decoded. Absent (--insecure): the node id is the record's key, believed.
   */
  verify?: VerifyRecord;
  /** Whether the scheduler holds this job now: its own submission, read back, is then not decoded (own-submissions.ts). */
  holds?(jobId: string): boolean;
  /** A task-event record refused by `verify`: nothing in it was decoded or applied. */
  eventRejected?(reason: RecordRejectReason, claimedNodeId: string): void;
}

/**
 * Where the active scheduler records which Kafka consumer group holds its committed offsets, so
 * the next one (after a failover) starts from them in a group of its own. Joining the shared
 * group instead would wait for the dead holder's session to time out before any partition is
 * assigned: seconds in which no result is processed.
 */
export interface ConsumerGroupHandoff {
  /** The group the previous active scheduler consumed in, if one was recorded. */
  previous(): Promise<string | undefined>;
  /**
   * The offsets the previous active scheduler started from ("topic:partition" → offset). A
   * scheduler killed right after taking over has committed nothing in its own group yet; its
   * successor starts from these rather than from the beginning of the logs.
   */
  startOffsets(): Promise<Map<string, string>>;
  /** Recorded before the new group is: the offsets first, so a successor never lacks both. */
  record(groupId: string, start: Map<string, string>): Promise<void>;
}

export interface TaskBus {
  readonly kind: string;
  /** Present when agents on other machines reach this bus themselves (Kafka); absent for an in-process bus. */
  readonly agentRouting?: RemoteAgentRoutes;
  /** Durably appends a submission; resolves once the log holds it. */
  appendSubmission(rec: SubmissionRecord): Promise<void>;
  /**
   * Queues assignments for one node, as few records as fit (retried until the broker takes them).
   * `sealTo`: the node's certificate key; a bus that seals refuses (throws) without one.
   */
  publishAssignments(nodeId: string, items: AssignmentIn[], sealTo?: SealRecipient): void;
  /** Starts delivering submissions, task events and load samples to the handlers (from the predecessor's offsets, given a handoff). */
  consume(handlers: BusHandlers, handoff?: ConsumerGroupHandoff): Promise<void>;
  /** Queues a cancel for one node behind the assignments already queued for it: it never overtakes them. */
  publishCancel(nodeId: string, cancel: CancellationIn, sealTo?: SealRecipient): void;
  /** Resolves once everything queued has been written. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** The record as the proto's JobSubmission (the submissions log's wire form). */
export function toJobSubmission(rec: SubmissionRecord): JobSubmissionIn {
  return {
    jobId: rec.jobId,
    submittedAtMs: rec.submittedAtMs,
    request: {
      kernelId: rec.kernelId,
      tasks: rec.inputs.map((data, i) => {
        const ref = rec.inputRefs?.[i];
        return ref ? { ref: { sha256: ref.sha256, sizeBytes: String(ref.sizeBytes) } } : { data };
      }),
      sharedInputs: (rec.sharedInputs ?? []).map((s) => ({ name: s.name, ref: { sha256: s.ref.sha256, sizeBytes: String(s.ref.sizeBytes) } })),
      resources: { cores: rec.needs.cores, memoryBytes: String(rec.needs.memoryBytes), gpu: rec.needs.gpu, nodeSelector: rec.needs.nodeSelector },
      priority: rec.priority,
      timeoutMs: rec.timeoutMs,
      maxAttempts: rec.maxAttempts,
      name: rec.name,
      gpuFallback: rec.needs.gpuFallback ?? "GPU_FALLBACK_WAIT",
      skipResultCache: rec.skipCache,
      requestId: rec.requestId ?? "",
      unschedulable: rec.unschedulable ?? "UNSCHEDULABLE_WAIT",
    },
    requestFingerprint: rec.requestFingerprint ?? "",
    tenant: rec.tenant ?? "",
    tokenId: rec.tokenId ?? "",
  };
}

export function fromJobSubmission(sub: JobSubmission): SubmissionRecord {
  const req = sub.request;
  if (!sub.jobId || !req) throw new Error("a submissions record without a job id or request");
  const r = req.resources;
  return {
    jobId: sub.jobId,
    submittedAtMs: sub.submittedAtMs,
    kernelId: req.kernelId,
    priority: req.priority,
    timeoutMs: req.timeoutMs,
    maxAttempts: req.maxAttempts,
    name: req.name,
    skipCache: req.skipResultCache,
    needs: {
      cores: r?.cores ?? 0,
      memoryBytes: Number(r?.memoryBytes ?? 0),
      gpu: r?.gpu ?? false,
      nodeSelector: r?.nodeSelector ?? {},
      gpuFallback: req.gpuFallback as ResourceNeeds["gpuFallback"],
    },
    inputs: req.tasks.map((t) => t.data),
    ...(req.tasks.some((t) => t.ref) ? { inputRefs: req.tasks.map((t) => (t.ref ? blobRefOf(t.ref) : null)) } : {}),
    ...(req.sharedInputs.length > 0 ? { sharedInputs: req.sharedInputs.map((s) => ({ name: s.name, ref: blobRefOf(s.ref ?? { sha256: "", sizeBytes: "0" }) })) } : {}),
    ...(req.requestId ? { requestId: req.requestId, requestFingerprint: sub.requestFingerprint } : {}),
    ...(req.unschedulable === "UNSCHEDULABLE_FAIL" ? { unschedulable: "UNSCHEDULABLE_FAIL" as const } : {}),
    ...(sub.tenant ? { tenant: sub.tenant } : {}),
    ...(sub.tokenId ? { tokenId: sub.tokenId } : {}),
  };
}

/** The wire BlobRef as the scheduler holds it (sizes as numbers: blobs are far below 2^53). */
export function blobRefOf(ref: { sha256: string; sizeBytes: string | number }): BlobRefShape {
  return { sha256: ref.sha256, sizeBytes: Number(ref.sizeBytes) };
}
