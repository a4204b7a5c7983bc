// The token store contract, against both stores: the in-memory one (and its file) and a real Redis.
import { mkdtempSync, statSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { MemoryTokenStore, RedisTokenStore } from "../../../scheduler/auth/token-stores.js";
import { consumeToken, issueToken, tokenId, TokenError, verifyToken, type TokenStore } from "../../../scheduler/auth/tokens.js";
import { uniquePrefix } from "../../helpers/services.js";

const redisUrl = process.env.DISTX_TEST_REDIS ?? "redis://127.0.0.1:6379";
const redis = new Redis(redisUrl, { lazyConnect: true });
afterAll(() => redis.disconnect());

const stores: [string, () => Promise<TokenStore>][] = [
  ["memory", async () => MemoryTokenStore.inMemory()],
  ["redis", async () => new RedisTokenStore(redis, uniquePrefix("tok"))],
];

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof TokenError) return err.reason;
    throw err;
  }
  return "accepted";
}

describe.each(stores)("token store: %s", (_name, open) => {
  it("verifies an issued API token and keeps only the hash of its secret", async () => {
    const store = await open();
    const { token, record } = await issueToken(store, { kind: "api", role: "submit", tenant: "team-a", description: "ci" });
    expect(tokenId(token)).toBe(record.id);
    const got = await verifyToken(store, token, "api");
    expect(got).toMatchObject({ id: record.id, role: "submit", tenant: "team-a" });
    // The secret is all after the id (base64url: it may itself hold "_").
    const secret = /^dx[aj]_[0-9a-f]{16}_(.+)$/.exec(token)![1]!;
    expect(JSON.stringify(await store.list())).not.toContain(secret);
  });

  it("refuses malformed, unknown, wrong-kind, wrong-secret, revoked and expired tokens", async () => {
    const store = await open();
    const { token } = await issueToken(store, { kind: "api", role: "read" });
    const id = tokenId(token)!;
    expect(await refusal(verifyToken(store, "Bearer nonsense", "api"))).toBe("malformed");
    expect(await refusal(verifyToken(store, token.replace(id, "0123456789abcdef"), "api"))).toBe("unknown");
    expect(await refusal(verifyToken(store, token, "join"))).toBe("wrong-kind");
    const wrongSecret = token.slice(0, -4) + (token.endsWith("AAAA") ? "BBBB" : "AAAA");
    expect(await refusal(verifyToken(store, wrongSecret, "api"))).toBe("bad-secret");
    const { token: shortLived } = await issueToken(store, { kind: "api", role: "read", ttlMs: 1000, nowMs: Date.now() - 2000 });
    expect(await refusal(verifyToken(store, shortLived, "api"))).toBe("expired");
    expect(await store.revoke(id, Date.now())).toBe(true);
    expect(await refusal(verifyToken(store, token, "api"))).toBe("revoked");
    expect(await store.revoke("ffffffffffffffff", Date.now())).toBe(false);
  });

  it("a single-use join token can be used once, even by concurrent joins", async () => {
    const store = await open();
    const { token } = await issueToken(store, { kind: "join", uses: 1, ttlMs: 60_000 });
    const outcomes = await Promise.all(Array.from({ length: 8 }, () => refusal(consumeToken(store, token, "join"))));
    expect(outcomes.filter((o) => o === "accepted")).toHaveLength(1);
    expect(outcomes.filter((o) => o === "used-up")).toHaveLength(7);
  });
});

describe("file-backed memory token store", () => {
  it("survives a reopen and writes its file readable by the owner only", async () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), "distx-tokens-")), "tokens.json");
    const first = await MemoryTokenStore.open(file);
    const { token } = await issueToken(first, { kind: "api", role: "admin" });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, "utf8")).not.toContain(/^dx[aj]_[0-9a-f]{16}_(.+)$/.exec(token)![1]!);
    const again = await MemoryTokenStore.open(file);
    expect((await verifyToken(again, token, "api")).role).toBe("admin");
  });
});
