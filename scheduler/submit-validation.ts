// The checks every job passes before the scheduler records it, whether it came as a SubmitJob
// request or as a record read back from the submissions log (Kafka): anyone who can write to
// that topic must get no further than a client calling the API. One function, used by both.
import type { SchedulerConfig } from "../common/config.js";
import { DistributeXError, invalidArgument, resourceExhausted } from "../common/errors.js";
import { isKernelId } from "../common/hash.js";
import type { SubmissionRecord } from "./backends/bus.js";
import type { ResourceNeeds } from "./model.js";
import type { BlobRefShape } from "./backends/types.js";

/** Most shared inputs one job may declare. */
export const MAX_SHARED_INPUTS = 16;
const SHARED_INPUT_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/** The fields of a submission the checks read (SubmitRequest and SubmissionRecord both have them). */
export interface SubmitFields {
  kernelId: string;
  inputs: Buffer[];
  /** Inputs stored by reference (a record read back from the log): their sizes count as bytes. */
  inputRefs?: (BlobRefShape | null)[];
  /** Shared inputs: by their bytes (a request) or by reference (a logged record). */
  sharedInputs?: { name: string; data?: Buffer; ref?: BlobRefShape }[];
  needs: Partial<ResourceNeeds>;
  priority: number;
  timeoutMs: number;
  maxAttempts: number;
  name: string;
}

type Limits = Pick<SchedulerConfig, "maxTasksPerJob" | "maxJobBytes" | "maxTaskTimeoutMs">;

/** First on its own: SubmitJob answers a malformed id before it looks the kernel up (NOT_FOUND). */
export function checkKernelId(kernelId: string): void {
  if (!isKernelId(kernelId)) {
    throw invalidArgument(`kernel_id must be the 64 lowercase hex digits of a sha256, got ${JSON.stringify(String(kernelId).slice(0, 80))}`);
  }
}

/**
 * Throws the DistributeXError (INVALID_ARGUMENT / RESOURCE_EXHAUSTED, naming the field) that SubmitJob
 * answers for a bad field; returns the inputs' total bytes. Kernel existence and GPU
 * availability depend on the scheduler's state and are checked by the caller.
 */
export function checkSubmitFields(req: SubmitFields, limits: Limits): number {
  checkKernelId(req.kernelId);
  if (req.inputs.length === 0) throw invalidArgument("a job needs at least one task; tasks is empty");
  if (req.inputs.length > limits.maxTasksPerJob) {
    throw resourceExhausted(`job has ${req.inputs.length} tasks; the limit is ${limits.maxTasksPerJob} (maxTasksPerJob)`);
  }
  let totalBytes = req.inputs.reduce((s, b) => s + b.byteLength, 0);
  if (req.inputRefs) {
    if (req.inputRefs.length !== req.inputs.length) throw invalidArgument("input references do not match the tasks");
    for (const ref of req.inputRefs) if (ref) totalBytes += checkBlobRef(ref, "tasks.ref");
  }
  const shared = req.sharedInputs ?? [];
  if (shared.length > MAX_SHARED_INPUTS) throw invalidArgument(`a job may have at most ${MAX_SHARED_INPUTS} shared_inputs, got ${shared.length}`);
  const names = new Set<string>();
  for (const s of shared) {
    if (!SHARED_INPUT_NAME.test(s.name)) throw invalidArgument(`shared_inputs.name must be 1-64 letters, digits, . _ -; got ${JSON.stringify(String(s.name).slice(0, 80))}`);
    if (names.has(s.name)) throw invalidArgument(`shared_inputs.name ${s.name} appears twice`);
    names.add(s.name);
    totalBytes += s.ref ? checkBlobRef(s.ref, "shared_inputs.ref") : (s.data?.byteLength ?? 0);
  }
  if (totalBytes > limits.maxJobBytes) {
    throw resourceExhausted(`job inputs total ${totalBytes} bytes; the limit is ${limits.maxJobBytes} (maxJobBytes)`);
  }
  if (!Number.isInteger(req.priority) || req.priority < -100 || req.priority > 100) {
    throw invalidArgument(`priority must be between -100 and 100, got ${req.priority}`);
  }
  if (!Number.isInteger(req.timeoutMs) || req.timeoutMs < 0) throw invalidArgument(`timeout_ms must be a non-negative whole number, got ${req.timeoutMs}`);
  if (req.timeoutMs > limits.maxTaskTimeoutMs) {
    throw invalidArgument(`timeout_ms ${req.timeoutMs} is above the limit of ${limits.maxTaskTimeoutMs}`);
  }
  if (!Number.isInteger(req.maxAttempts) || req.maxAttempts < 0) throw invalidArgument(`max_attempts must be a non-negative whole number, got ${req.maxAttempts}`);
  if (req.maxAttempts > 100) throw invalidArgument(`max_attempts must be at most 100, got ${req.maxAttempts}`);
  if (req.name.length > 200) throw invalidArgument("name must be at most 200 characters");
  const memoryBytes = req.needs.memoryBytes ?? 0;
  if (!Number.isFinite(memoryBytes) || memoryBytes < 0) {
    throw invalidArgument(`resources.memory_bytes must be a non-negative number, got ${memoryBytes}`);
  }
  return totalBytes;
}

/** A well-formed reference; returns its size. */
function checkBlobRef(ref: BlobRefShape, field: string): number {
  if (!isKernelId(ref.sha256)) throw invalidArgument(`${field}.sha256 must be 64 lowercase hex digits`);
  if (!Number.isSafeInteger(ref.sizeBytes) || ref.sizeBytes < 0) throw invalidArgument(`${field}.size_bytes must be a byte count, got ${ref.sizeBytes}`);
  return ref.sizeBytes;
}

/** Job ids the scheduler makes: `job-` and a UUID. A record with any other id was not written by us. */
const JOB_ID = /^job-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * A submissions-log record: the SubmitJob checks, plus what only a record can get wrong (the
 * job id and time the scheduler set). Throws a DistributeXError; the caller drops the record.
 */
export function checkLoggedSubmission(rec: SubmissionRecord, limits: Limits): void {
  if (!JOB_ID.test(rec.jobId)) throw invalidArgument(`job_id must be job-<uuid>, got ${JSON.stringify(String(rec.jobId).slice(0, 80))}`);
  if (!Number.isFinite(rec.submittedAtMs) || rec.submittedAtMs < 0) throw invalidArgument(`submitted_at_ms must be a time, got ${rec.submittedAtMs}`);
  checkSubmitFields(rec, limits);
}

/** The metric label for a refused record: the gRPC status SubmitJob would have answered. */
export function rejectionReason(err: DistributeXError): string {
  const names: Record<number, string> = { 3: "invalid_argument", 5: "not_found", 8: "resource_exhausted", 9: "failed_precondition" };
  return names[err.code] ?? `code_${err.code}`;
}
