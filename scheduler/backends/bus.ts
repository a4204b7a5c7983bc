// The message seam between scheduler and agents when they span machines. The in-memory bus is
// the one-process stand-in (the contract tests run against both); the Kafka bus is the real one.
// Delivery to the scheduler's handlers is at-least-once: a record counts as consumed only after
// its handler resolved (for Kafka: its offset is committed only then).
import type { ResourceNeeds } from "../model.js";
import type { Assignment, AssignmentIn, TaskUpdate } from "../../common/types.js";
import type { LoadSample } from "../../common/kafka-wire.js";

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
}

export interface TaskEventRecord {
  nodeId: string;
  update: TaskUpdate;
}

export interface BusHandlers {
  submission(rec: SubmissionRecord): Promise<void>;
  event(rec: TaskEventRecord): Promise<void>;
  load(sample: LoadSample): void;
}

export interface TaskBus {
  readonly kind: string;
  /** Durably appends a submission; resolves once the log holds it. */
  appendSubmission(rec: SubmissionRecord): Promise<void>;
  /** Queues an assignment for one node (batched; retried until the broker takes it). */
  publishAssignment(nodeId: string, a: AssignmentIn): void;
  /** Starts delivering submissions, task events and load samples to the handlers. */
  consume(handlers: BusHandlers): Promise<void>;
  /** The agent's side, for tests and in-process agents: assignments for nodeId. */
  subscribeAssignments(nodeId: string, onAssign: (a: Assignment) => void): Promise<{ close(): Promise<void> }>;
  /** The agent's side: a task update or a load sample back to the scheduler. */
  publishEvent(rec: TaskEventRecord): void;
  publishLoad(sample: LoadSample): void;
  /** Resolves once everything queued has been written. */
  flush(): Promise<void>;
  close(): Promise<void>;
}
