// The deny-list of removed nodes and revoked certificate serials. Checked on every AgentService
// call and session message, so the check is a synchronous Set lookup; the list is kept beside
// the token store (a file with state=memory, a Redis set with state=redis) and loaded at start.
// With Redis, every scheduler of the namespace re-reads the set while it runs (refreshMs), so a
// node removed through one scheduler is refused by the others within that bound too.
import { EventEmitter } from "node:events";
import { existsSync, promises as fs } from "node:fs";
import path from "node:path";
import type { Redis } from "ioredis";
import { normaliseSerial } from "./pki.js";

/** Removed nodes are few; the bound only stops an admin script gone wrong from growing it forever. */
export const MAX_REVOCATIONS = 100_000;

/**
 * How often a Redis-backed list looks for entries other schedulers added: the bound on how long
 * a node removed elsewhere is still accepted here. One SCARD per period (SMEMBERS only when the
 * count moved), so it costs nothing worth measuring.
 */
export const REVOCATION_REFRESH_MS = 1000;

interface Persist {
  load(): Promise<string[]>;
  add(entry: string): Promise<void>;
  /** Every entry, when the shared copy may hold some this process has not seen; else undefined. */
  changed?(): Promise<string[] | undefined>;
}

export interface RevocationEvents {
  /** A node id another scheduler revoked, learnt by a refresh (this scheduler's own are not repeated). */
  node_revoked: [nodeId: string];
}

export class Revocations extends EventEmitter<RevocationEvents> {
  private readonly entries = new Set<string>();
  private refreshTimer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(private readonly persist: Persist | undefined) {
    super();
  }

  static inMemory(): Revocations {
    return new Revocations(undefined);
  }

  static async open(persist: Persist): Promise<Revocations> {
    const r = new Revocations(persist);
    for (const e of await persist.load()) r.entries.add(e);
    return r;
  }

  static file(file: string): Promise<Revocations> {
    let writing = Promise.resolve();
    const all: string[] = [];
    return Revocations.open({
      async load() {
        if (!existsSync(file)) return [];
        const parsed = JSON.parse(await fs.readFile(file, "utf8")) as { revoked?: string[] };
        all.push(...(parsed.revoked ?? []));
        return all;
      },
      add(entry) {
        all.push(entry);
        const text = JSON.stringify({ revoked: all }, null, 1);
        writing = writing.then(async () => {
          await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
          const tmp = `${file}.${process.pid}.tmp`;
          await fs.writeFile(tmp, text, { mode: 0o600 });
          await fs.rename(tmp, file);
        });
        return writing;
      },
    });
  }

  /** The set `<prefix>:revoked-certs`, shared by every scheduler of the prefix and re-read every refreshMs. */
  static async redis(redis: Redis, prefix: string, options: { refreshMs?: number; onRefreshError?: (err: Error) => void } = {}): Promise<Revocations> {
    const key = `${prefix}:revoked-certs`;
    // Entries are only ever added, so a count that moved is the one sign of a change to look for.
    let seenCount = 0;
    const r = await Revocations.open({
      load: async () => {
        const all = await redis.smembers(key);
        seenCount = all.length;
        return all;
      },
      add: async (entry) => void (await redis.sadd(key, entry)),
      changed: async () => {
        if ((await redis.scard(key)) === seenCount) return undefined;
        const all = await redis.smembers(key);
        seenCount = all.length;
        return all;
      },
    });
    r.startRefresh(options.refreshMs ?? REVOCATION_REFRESH_MS, options.onRefreshError);
    return r;
  }

  /** Re-reads the shared copy every `everyMs` (a chain of timeouts: a slow store never stacks reads). */
  private startRefresh(everyMs: number, onError: ((err: Error) => void) | undefined): void {
    const tick = () => {
      this.refreshTimer = undefined;
      this.refresh().then(
        () => this.scheduleRefresh(tick, everyMs),
        (err: unknown) => {
          // The last list read stays in force; a store that is down is retried next period.
          onError?.(err instanceof Error ? err : new Error(String(err)));
          this.scheduleRefresh(tick, everyMs);
        },
      );
    };
    this.scheduleRefresh(tick, everyMs);
  }

  private scheduleRefresh(tick: () => void, everyMs: number): void {
    if (this.closed) return;
    this.refreshTimer = setTimeout(tick, everyMs);
    this.refreshTimer.unref();
  }

  /** Takes in what other schedulers added to the shared copy since the last look. */
  async refresh(): Promise<void> {
    const all = await this.persist?.changed?.();
    if (!all) return;
    for (const e of all) {
      if (this.entries.has(e)) continue;
      // Never dropped for size: a revocation another scheduler made is honoured whatever the count.
      this.entries.add(e);
      if (e.startsWith("node:")) this.emit("node_revoked", e.slice("node:".length));
    }
  }

  async revokeNode(nodeId: string, serials: string[] = []): Promise<void> {
    for (const e of [`node:${nodeId}`, ...serials.map((s) => `serial:${normaliseSerial(s)}`)]) {
      if (this.entries.has(e)) continue;
      if (this.entries.size >= MAX_REVOCATIONS) throw new Error(`the revocation list is full (${MAX_REVOCATIONS} entries)`);
      this.entries.add(e);
      await this.persist?.add(e);
    }
  }

  isRevoked(nodeId: string, serial: string): boolean {
    return this.entries.has(`node:${nodeId}`) || this.entries.has(`serial:${normaliseSerial(serial)}`);
  }

  /** Stops the refresh (the list keeps answering from what it holds). */
  close(): void {
    this.closed = true;
    clearTimeout(this.refreshTimer);
  }
}
