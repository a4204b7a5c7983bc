// The scheduler lease: which of several schedulers sharing a store is the active one. The
// Scheduler depends on this interface only (scheduler.ts; fenced-store.ts reads `trusted`).
// Implementations: RedisLease (redis-lease.ts: SET NX PX, renewed every ttl/3), and MemoryLease
// below, for schedulers that share one process (tests, a single-machine setup that wants the
// same standby behaviour). The contract tests run against both.
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";

export interface LeaseEvents {
  /** Another scheduler holds the lease now (null: unknown): the holder must stop acting at once. */
  lost: [holder: string | null];
}

export interface Lease extends EventEmitter<LeaseEvents> {
  readonly owner: string;
  readonly isHeld: boolean;
  /** Held, and confirmed within its ttl: no other scheduler can have taken it since. Writes are fenced on it. */
  readonly trusted: boolean;
  /** Takes the lease if it is free; never waits. */
  tryAcquire(): Promise<boolean>;
  /** Resolves once held (then kept until release or loss); onWait is called once if it has to wait, onError for each backend error waited out. */
  acquire(onWait?: (holder: string | null) => void, signal?: AbortSignal, onError?: (err: Error) => void): Promise<void>;
  /** Gives the lease up (if held) and stops renewing; a later acquire fails. */
  release(): Promise<void>;
}

/** Holders by key, shared by the MemoryLeases of one table (one per process unless a test makes its own). */
export class MemoryLeaseTable {
  private readonly holders = new Map<string, MemoryLease>();
  private readonly waiters = new Set<() => void>();

  holder(key: string): MemoryLease | undefined {
    return this.holders.get(key);
  }

  take(key: string, lease: MemoryLease): boolean {
    if (this.holders.has(key)) return false;
    this.holders.set(key, lease);
    return true;
  }

  give(key: string, lease: MemoryLease): void {
    if (this.holders.get(key) !== lease) return;
    this.holders.delete(key);
    for (const wake of [...this.waiters]) wake();
  }

  /** Resolves at the next give (a waiter then tries again). */
  changed(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.waiters.delete(wake);
        signal?.removeEventListener("abort", wake);
        resolve();
      };
      this.waiters.add(wake);
      if (signal?.aborted) wake();
      else signal?.addEventListener("abort", wake, { once: true });
    });
  }
}

const defaultTable = new MemoryLeaseTable();

/**
 * A lease among schedulers in one process: no ttl (a holder in the same process cannot be paused
 * apart from its rivals), so it is trusted exactly while held and passes to a waiter on release.
 */
export class MemoryLease extends EventEmitter<LeaseEvents> implements Lease {
  readonly owner: string;
  private held = false;
  private stopped = false;

  constructor(
    private readonly key = "leader",
    private readonly table: MemoryLeaseTable = defaultTable,
    owner?: string,
  ) {
    super();
    this.owner = owner ?? `scheduler-${randomUUID()}`;
  }

  get isHeld(): boolean {
    return this.held;
  }

  get trusted(): boolean {
    return this.held;
  }

  async tryAcquire(): Promise<boolean> {
    if (this.stopped) return false;
    if (this.table.take(this.key, this)) this.held = true;
    return this.held;
  }

  async acquire(onWait?: (holder: string | null) => void, signal?: AbortSignal): Promise<void> {
    let told = false;
    for (;;) {
      if (this.stopped || signal?.aborted) throw new Error("lease wait aborted");
      if (await this.tryAcquire()) return;
      if (!told) {
        told = true;
        onWait?.(this.table.holder(this.key)?.owner ?? null);
      }
      await this.table.changed(signal);
    }
  }

  async release(): Promise<void> {
    this.stopped = true;
    if (!this.held) return;
    this.held = false;
    this.table.give(this.key, this);
  }
}
