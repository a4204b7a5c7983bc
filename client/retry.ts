// Retry policy of the typed client: which failures a call may be repeated after, how long to wait
// (capped exponential backoff with full jitter, so clients that lost the same scheduler do not
// return in lockstep), and the ledger that makes a resumed watch yield each outcome exactly once.
import { status } from "@grpc/grpc-js";
import type { TaskEvent } from "../common/types.js";

export interface RetryOptions {
  /** Give up once this long has passed without success (for a watch: without a message), ms. Default 60 000. */
  deadlineMs?: number;
  /** First backoff, ms. Default 100. */
  initialBackoffMs?: number;
  /** Largest backoff, ms. Default 2 000. */
  maxBackoffMs?: number;
}

export const DEFAULT_RETRY: Required<RetryOptions> = { deadlineMs: 60_000, initialBackoffMs: 100, maxBackoffMs: 2000 };

export function resolveRetry(r: RetryOptions | false | undefined): Required<RetryOptions> | undefined {
  return r === false ? undefined : { ...DEFAULT_RETRY, ...(r ?? {}) };
}

/** Delay before retry number n (0-based): uniform in [cap/2, cap], cap = min(max, initial × 2^n). */
export function backoffDelay(r: Required<RetryOptions>, n: number): number {
  const cap = Math.min(r.maxBackoffMs, r.initialBackoffMs * 2 ** Math.min(n, 20));
  return cap / 2 + Math.random() * (cap / 2);
}

/**
 * Codes after which repeating an idempotent call is safe and may succeed: the scheduler was not
 * reachable (restart, failover), the attempt's deadline passed, or it asked for a retry. Codes
 * that describe the request (INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED, ...) never are.
 */
export function isSafeToRetry(code: number): boolean {
  return code === status.UNAVAILABLE || code === status.DEADLINE_EXCEEDED || code === status.ABORTED;
}

const TERMINAL = new Set(["TASK_STATE_SUCCEEDED", "TASK_STATE_FAILED", "TASK_STATE_CANCELLED"]);

/** Task outcomes seen by a watch, as a bitmap by task index (the wire form of seen_outcomes). */
export class OutcomeLedger {
  private bits = Buffer.alloc(0);
  /** Outcomes admitted so far. */
  count = 0;

  has(index: number): boolean {
    const byte = index >> 3;
    return byte < this.bits.length && (this.bits[byte]! & (1 << (index & 7))) !== 0;
  }

  /** Whether to pass the event on: an outcome only the first time; other changes while the task has none. */
  admit(task: Pick<TaskEvent, "taskIndex" | "state">): boolean {
    if (this.has(task.taskIndex)) return false;
    if (!TERMINAL.has(task.state)) return true;
    const byte = task.taskIndex >> 3;
    if (byte >= this.bits.length) {
      const grown = Buffer.alloc(Math.max(byte + 1, this.bits.length * 2));
      this.bits.copy(grown);
      this.bits = grown;
    }
    this.bits[byte] = this.bits[byte]! | (1 << (task.taskIndex & 7));
    this.count++;
    return true;
  }

  bitmap(): Buffer {
    return this.bits;
  }
}
