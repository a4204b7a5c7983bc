// The two token stores: in memory (optionally kept in a file, for the single-machine default,
// so that tokens survive a scheduler restart) and in Redis (shared by active and standby
// schedulers). Both hold only hashes of secrets.
import { promises as fs } from "node:fs";
import path from "node:path";
import type { Redis } from "ioredis";
import type { SchedulerConfig } from "../../common/config.js";
import type { StateStore } from "../backends/types.js";
import type { TokenRecord, TokenStore } from "./tokens.js";

/**
 * The scheduler's one token store (API and join tokens): in Redis beside the state when
 * state=redis (shared by active and standby schedulers), else in memory kept in <dataDir>/tokens.json.
 */
export async function openTokenStore(config: Pick<SchedulerConfig, "dataDir" | "redisPrefix">, store: StateStore): Promise<TokenStore> {
  if (store.shared) return new RedisTokenStore(store.shared.redis, config.redisPrefix);
  return MemoryTokenStore.open(path.join(config.dataDir, "tokens.json"));
}

/** Upper bound on stored tokens: a store is state a client can grow, so it is bounded too. */
export const MAX_TOKENS = 10_000;

export class MemoryTokenStore implements TokenStore {
  private readonly records = new Map<string, TokenRecord>();
  private writing: Promise<void> = Promise.resolve();

  /** With `file`, records are loaded from it and every change is written back (mode 0600, atomic rename). */
  private constructor(private readonly file: string | undefined) {}

  static inMemory(): MemoryTokenStore {
    return new MemoryTokenStore(undefined);
  }

  static async open(file: string): Promise<MemoryTokenStore> {
    const store = new MemoryTokenStore(file);
    let text: string | undefined;
    try {
      text = await fs.readFile(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    if (text !== undefined) {
      const parsed = JSON.parse(text) as { tokens?: TokenRecord[] };
      for (const r of parsed.tokens ?? []) store.records.set(r.id, r);
    }
    return store;
  }

  async put(record: TokenRecord): Promise<void> {
    if (!this.records.has(record.id) && this.records.size >= MAX_TOKENS) throw new Error(`token store is full (${MAX_TOKENS} tokens): revoke unused ones`);
    this.records.set(record.id, { ...record });
    await this.save();
  }

  async get(id: string): Promise<TokenRecord | undefined> {
    const r = this.records.get(id);
    return r && { ...r };
  }

  async list(): Promise<TokenRecord[]> {
    return [...this.records.values()].map((r) => ({ ...r }));
  }

  async revoke(id: string, atMs: number): Promise<boolean> {
    const r = this.records.get(id);
    if (!r) return false;
    r.revokedAtMs ??= atMs;
    await this.save();
    return true;
  }

  async takeUse(id: string): Promise<boolean> {
    const r = this.records.get(id);
    if (!r) return false;
    if (r.usesLeft === undefined) return true;
    if (r.usesLeft <= 0) return false;
    r.usesLeft -= 1; // synchronous with the check: two concurrent joins cannot both take the last use
    await this.save();
    return true;
  }

  private save(): Promise<void> {
    const file = this.file;
    if (!file) return Promise.resolve();
    // Writes are serialised so an older snapshot never lands after a newer one.
    const snapshot = JSON.stringify({ tokens: [...this.records.values()] }, null, 2);
    this.writing = this.writing.then(async () => {
      await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      const tmp = `${file}.${process.pid}.tmp`;
      await fs.writeFile(tmp, snapshot, { mode: 0o600 });
      await fs.rename(tmp, file);
    });
    return this.writing;
  }
}

// One hash, id → JSON record. takeUse is a script so that the check and the decrement are one step.
const TAKE_USE = `
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local r = cjson.decode(raw)
if r.usesLeft == nil then return 1 end
if r.usesLeft <= 0 then return 0 end
r.usesLeft = r.usesLeft - 1
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(r))
return 1`;

const REVOKE = `
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local r = cjson.decode(raw)
if r.revokedAtMs == nil then
  r.revokedAtMs = tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(r))
end
return 1`;

export class RedisTokenStore implements TokenStore {
  private readonly key: string;

  constructor(
    private readonly redis: Redis,
    prefix = "distx",
  ) {
    this.key = `${prefix}:tokens`;
  }

  async put(record: TokenRecord): Promise<void> {
    const exists = await this.redis.hexists(this.key, record.id);
    if (!exists && (await this.redis.hlen(this.key)) >= MAX_TOKENS) throw new Error(`token store is full (${MAX_TOKENS} tokens): revoke unused ones`);
    await this.redis.hset(this.key, record.id, JSON.stringify(record));
  }

  async get(id: string): Promise<TokenRecord | undefined> {
    const raw = await this.redis.hget(this.key, id);
    return raw ? (JSON.parse(raw) as TokenRecord) : undefined;
  }

  async list(): Promise<TokenRecord[]> {
    const all = await this.redis.hvals(this.key);
    return all.map((raw) => JSON.parse(raw) as TokenRecord);
  }

  async revoke(id: string, atMs: number): Promise<boolean> {
    return (await this.redis.eval(REVOKE, 1, this.key, id, String(atMs))) === 1;
  }

  async takeUse(id: string): Promise<boolean> {
    return (await this.redis.eval(TAKE_USE, 1, this.key, id)) === 1;
  }
}
