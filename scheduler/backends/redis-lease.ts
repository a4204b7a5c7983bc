// Scheduler leadership through a Redis lease: SET key me NX PX ttl to take it, a compare-and-
// extend script to renew it. The active scheduler renews every ttl/3; a standby polls until the
// key has been gone for ttl/2 (the active one died or lost Redis for a whole ttl) and takes over.
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Redis } from "ioredis";
import type { Lease, LeaseEvents } from "./lease.js";

// Renew only our own lease; re-take it if it vanished (e.g. Redis restarted without it).
const RENEW = `
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]); return 1 end
return 0`;

const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

export class RedisLease extends EventEmitter<LeaseEvents> implements Lease {
  readonly owner: string;
  private timer?: NodeJS.Timeout;
  private held = false;
  /** When the last successful take or renewal was sent (see trusted), on the monotonic clock: a wall-clock step must not extend trust. */
  private confirmedAt = 0;
  private stopped = false;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly ttlMs: number,
    owner?: string,
    /** The connection is this lease's own (openBackends gives it one): release() closes it. */
    private readonly ownsConnection = false,
  ) {
    super();
    this.owner = owner ?? `scheduler-${randomUUID()}`;
  }

  get isHeld(): boolean {
    return this.held;
  }

  /**
   * Held, and confirmed by Redis within the last ttl (timed from when that confirmation was
   * asked for): no other scheduler can have taken it since. A process that was paused, or whose
   * renewals failed, for longer than the ttl is not trusted until its next renewal answers,
   * though it has not yet heard that the lease was lost: it must not write meanwhile.
   */
  get trusted(): boolean {
    return this.held && performance.now() < this.confirmedAt + this.ttlMs;
  }

  async tryAcquire(): Promise<boolean> {
    const sentAt = performance.now();
    const ok = await this.redis.set(this.key, this.owner, "PX", this.ttlMs, "NX");
    if (ok === "OK") this.confirmedAt = sentAt;
    return ok === "OK";
  }

  /**
   * Resolves once this process holds the lease; calls onWait once if it has to wait. Redis
   * errors (down, refusing writes) are waited out like a held lease, each reported to onError:
   * a standby (re)started during a store outage must stand by, not crash-loop.
   */
  async acquire(onWait?: (holder: string | null) => void, signal?: AbortSignal, onError?: (err: Error) => void): Promise<void> {
    let told = false;
    let freeSince: number | undefined;
    for (;;) {
      try {
        const holder = await this.redis.get(this.key);
        if (holder === null) {
          // A key that vanished (Redis restarted without it) or expired while the holder's
          // renewals were refused is re-taken by that holder at its next renewal (every ttl/3).
          // Taking it only once it has stayed free for ttl/2 lets the incumbent win that race,
          // so a store hiccup does not move leadership: each move is a failover for every
          // client and agent. A holder that really died costs ttl/2 more.
          freeSince ??= Date.now();
          if (Date.now() - freeSince >= this.ttlMs / 2 && (await this.tryAcquire())) break;
        } else {
          freeSince = undefined;
          if (!told) {
            told = true;
            onWait?.(holder);
          }
        }
      } catch (err) {
        onError?.(err as Error);
      }
      if (this.stopped || signal?.aborted) throw new Error("lease wait aborted");
      await new Promise((r) => setTimeout(r, Math.max(100, Math.floor(this.ttlMs / 4))));
    }
    this.held = true;
    this.timer = setInterval(() => void this.renew(), Math.max(100, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    try {
      const sentAt = performance.now();
      const ok = await this.redis.eval(RENEW, 1, this.key, this.owner, this.ttlMs);
      if (ok === 1) this.confirmedAt = sentAt;
      if (ok !== 1 && this.held) {
        this.held = false;
        clearInterval(this.timer);
        // Another scheduler holds the lease: this one must stop acting at once (no split brain).
        this.emit("lost", await this.redis.get(this.key));
      }
    } catch {
      // Redis unreachable: keep acting until the lease would have expired; the next renew tells.
    }
  }

  async release(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    if (this.held) {
      this.held = false;
      await this.redis.eval(RELEASE, 1, this.key, this.owner).catch(() => undefined);
    }
    if (this.ownsConnection) this.redis.disconnect();
  }
}
