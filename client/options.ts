// The typed client's options: how it connects and retries, and what a job submission holds.
import type { Credentials } from "./credentials.js";
import type { RetryOptions } from "./retry.js";

export interface SubmitOptions {
  kernelId: string;
  inputs: Uint8Array[];
  priority?: number;
  timeoutMs?: number;
  maxAttempts?: number;
  name?: string;
  /** Run every task even if an identical one has a cached result. */
  skipResultCache?: boolean;
  resources?: { cores?: number; memoryBytes?: number; gpu?: boolean; nodeSelector?: Record<string, string> };
  /** GPU kernels: without a GPU agent, wait (default), run in gpu.js cpu mode, or reject at submit. */
  gpuFallback?: "wait" | "cpu" | "reject";
  /**
   * Idempotency key: retries of this submit (by this client or by the caller) with the same id
   * return the same job and never run it twice. Generated per submitJob call when not given.
   */
  requestId?: string;
  /** When no node could ever take the job: wait for one (default; GetJob says why) or fail at once. */
  unschedulable?: "wait" | "fail";
  /**
   * Inputs every task reads (a matrix, a lookup table, weights), in order: sent and stored once,
   * fetched once per agent; kernels read them by index (kernels/README.md, "Shared inputs").
   */
  sharedInputs?: { name: string; data: Uint8Array }[];
}

export interface ClientOptions extends Credentials {
  /** Deadline for one attempt of a unary call, ms. */
  timeoutMs?: number;
  /**
   * Retries of idempotent calls (and of SubmitJob, made idempotent by its request id) and
   * resumption of watches after UNAVAILABLE / DEADLINE_EXCEEDED, with capped exponential backoff
   * and jitter, within `deadlineMs`; false turns it off. Defaults in client/retry.ts.
   */
  retry?: RetryOptions | false;
}
