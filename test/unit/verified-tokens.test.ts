// The authentication fast path (scheduler/auth/authenticate.ts): a token verified within the last
// second is found by its exact header text, with no hashing; it never outlives its second, its
// expiry or a revoke, and expired entries are swept so that a token's text is not kept.
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { authenticateClient, VerifiedTokens, type AuthenticationContext } from "../../scheduler/auth/authenticate.js";
import { Revocations } from "../../scheduler/auth/revocations.js";
import { MemoryTokenStore } from "../../scheduler/auth/token-stores.js";
import { issueToken } from "../../scheduler/auth/tokens.js";

const bearer = (token: string, spaces = " ") => {
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer${spaces}${token}`);
  return md;
};

async function setup() {
  const tokens = MemoryTokenStore.inMemory();
  const ctx: AuthenticationContext = { insecure: false, tokens, revocations: Revocations.inMemory(), verified: new VerifiedTokens() };
  const { token, record } = await issueToken(tokens, { kind: "api", role: "submit", tenant: "t1" });
  return { ctx, tokens, token, record };
}

describe("verified tokens (the authentication fast path)", () => {
  it("answers a token verified within the last second synchronously, and asks the store again after it", async () => {
    const { ctx, token, record } = await setup();
    const t0 = 1_000_000;
    const first = authenticateClient(bearer(token), ctx, t0);
    expect(first).toBeInstanceOf(Promise);
    expect(await first).toMatchObject({ kind: "client", tokenId: record.id, role: "submit", tenant: "t1" });
    const again = authenticateClient(bearer(token), ctx, t0 + 999);
    expect(again).not.toBeInstanceOf(Promise);
    expect(again).toMatchObject({ tokenId: record.id });
    expect(authenticateClient(bearer(token), ctx, t0 + 1000)).toBeInstanceOf(Promise);
  });

  it("a revoke clears it: the next call is refused at once", async () => {
    const { ctx, tokens, token, record } = await setup();
    await authenticateClient(bearer(token), ctx, Date.now());
    await tokens.revoke(record.id, Date.now());
    ctx.verified.clear(); // what RevokeToken does
    await expect(Promise.resolve().then(() => authenticateClient(bearer(token), ctx))).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
  });

  it("never trusts a token past its expiry, even within the second", async () => {
    const tokens = MemoryTokenStore.inMemory();
    const ctx: AuthenticationContext = { insecure: false, tokens, revocations: Revocations.inMemory(), verified: new VerifiedTokens() };
    const now = Date.now();
    const { token } = await issueToken(tokens, { kind: "api", role: "read", tenant: "t1", ttlMs: 500 });
    await authenticateClient(bearer(token), ctx, now);
    expect(authenticateClient(bearer(token), ctx, now + 400)).not.toBeInstanceOf(Promise);
    const late = authenticateClient(bearer(token), ctx, now + 600);
    expect(late).toBeInstanceOf(Promise);
    await expect(late).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
  });

  it("a header spelled differently is verified on its own and names the same principal; a wrong secret is refused", async () => {
    const { ctx, token, record } = await setup();
    await authenticateClient(bearer(token), ctx, 5_000);
    const spaced = authenticateClient(bearer(token, "   "), ctx, 5_001);
    expect(spaced).toBeInstanceOf(Promise);
    expect(await spaced).toMatchObject({ tokenId: record.id });
    const forged = token.slice(0, -4) + (token.endsWith("aaaa") ? "bbbb" : "aaaa");
    await expect(Promise.resolve().then(() => authenticateClient(bearer(forged), ctx, 5_002))).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    expect(ctx.verified.size).toBe(2);
  });

  it("sweeps expired entries, so a token's text is not kept after its second", () => {
    const cache = new VerifiedTokens();
    const entry = (untilMs: number) => ({ record: {} as never, principal: { kind: "insecure" as const }, untilMs });
    cache.set("Bearer a", entry(2_000), 1_000);
    cache.set("Bearer b", entry(2_500), 1_500);
    expect(cache.size).toBe(2);
    cache.set("Bearer c", entry(3_200), 2_200); // a second after the last sweep: "a" has expired
    expect(cache.size).toBe(2);
    expect(cache.get("Bearer a", 2_200)).toBeUndefined();
    expect(cache.get("Bearer b", 2_499)).toBeDefined();
    expect(cache.get("Bearer b", 2_500)).toBeUndefined(); // dropped when found expired
    expect(cache.size).toBe(1);
  });

  it("when full of live entries, drops the oldest one, not all: a token in steady use keeps its fast path", () => {
    const cache = new VerifiedTokens();
    const entry = { record: {} as never, principal: { kind: "insecure" as const }, untilMs: 10_000 };
    cache.set("Bearer steady", entry, 1_000);
    for (let i = 0; i < 9_999; i++) cache.set(`Bearer flood-${i}`, entry, 1_000);
    expect(cache.size).toBe(10_000);
    cache.set("Bearer steady", entry, 1_001); // verified again: now the newest
    cache.set("Bearer one-more", entry, 1_002);
    expect(cache.size).toBe(10_000);
    expect(cache.get("Bearer steady", 1_002)).toBeDefined();
    expect(cache.get("Bearer one-more", 1_002)).toBeDefined();
    expect(cache.get("Bearer flood-0", 1_002)).toBeUndefined(); // the oldest went
    expect(cache.get("Bearer flood-1", 1_002)).toBeDefined();
  });
});
