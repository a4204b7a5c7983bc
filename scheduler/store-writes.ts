// Writes the core must not act on before they reach the store: a task's final result (its
// state in memory changes only once the result is stored, so a result is never reported
// without being kept) and a finished job's metadata. A failed write (Redis refusing writes at
// maxmemory, a restart, a network cut) is retried with capped exponential backoff and jitter
// until it succeeds or the scheduler stops. Every failure is counted; the log says so at most
// once a second per kind of write, with how many were left out, so an outage cannot flood it.
import type { Logger } from "../common/logger.js";

export interface StoreWriteFailure {
  what: string;
  attempt: number;
  retryInMs: number;
  err: string;
}

export class StoreStoppedError extends Error {
  constructor(what: string) {
    super(`${what}: the scheduler is stopping; the write was not retried`);
    this.name = "StoreStoppedError";
  }
}

const LOG_EVERY_MS = 1000;

export class DurableWrites {
  /** Failed write attempts so far (each retry that fails counts). */
  failures = 0;
  private stopped = false;
  private readonly logged = new Map<string, { atMs: number; suppressed: number }>();
  private readonly sleepers = new Set<() => void>();

  constructor(
    private readonly log: Logger,
    private readonly onFailure: (f: StoreWriteFailure) => void = () => undefined,
    private readonly baseDelayMs = 50,
    private readonly maxDelayMs = 2000,
  ) {}

  /** Ends every retry loop (each throws StoreStoppedError); used when the scheduler stops. */
  stop(): void {
    this.stopped = true;
    for (const wake of this.sleepers) wake();
  }

  async run<T>(what: string, context: Record<string, unknown>, write: () => Promise<T>): Promise<T> {
    let delay = this.baseDelayMs;
    for (let attempt = 1; ; attempt++) {
      if (this.stopped) throw new StoreStoppedError(what);
      try {
        return await write();
      } catch (err) {
        if (this.stopped) throw new StoreStoppedError(what);
        this.failures++;
        // Full jitter keeps hundreds of waiting writes from hitting a recovering store at once.
        const retryInMs = Math.round(delay / 2 + Math.random() * (delay / 2));
        const failure = { what, attempt, retryInMs, err: (err as Error).message };
        this.onFailure(failure);
        this.report(failure, context);
        await this.sleep(retryInMs);
        delay = Math.min(delay * 2, this.maxDelayMs);
      }
    }
  }

  private report(f: StoreWriteFailure, context: Record<string, unknown>): void {
    const now = Date.now();
    const last = this.logged.get(f.what);
    if (last && now - last.atMs < LOG_EVERY_MS) {
      last.suppressed++;
      return;
    }
    this.logged.set(f.what, { atMs: now, suppressed: 0 });
    this.log.warn(
      { event: "store_write_failed", ...context, ...f, suppressedSinceLast: last?.suppressed ?? 0, retrySafe: true },
      `could not write ${f.what} to the state store; retrying in ${f.retryInMs} ms`,
    );
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }
}
