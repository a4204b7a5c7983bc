// The deny-list of removed nodes and revoked certificate serials. Checked on every AgentService
// call and session message, so the check is a synchronous Set lookup; the list is kept beside
// the token store (a file with state=memory, a Redis hash with state=redis) and loaded at start.
import { existsSync, promises as fs } from "node:fs";
import path from "node:path";
import type { Redis } from "ioredis";
import { normaliseSerial } from "./pki.js";

/** Removed nodes are few; the bound only stops an admin script gone wrong from growing it forever. */
export const MAX_REVOCATIONS = 100_000;

interface Persist {
  load(): Promise<string[]>;
  add(entry: string): Promise<void>;
}

export class Revocations {
  private readonly entries = new Set<string>();
  private constructor(private readonly persist: Persist | undefined) {}

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

  static redis(redis: Redis, prefix: string): Promise<Revocations> {
    const key = `${prefix}:revoked-certs`;
    return Revocations.open({
      load: () => redis.smembers(key),
      add: async (entry) => void (await redis.sadd(key, entry)),
    });
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
}
