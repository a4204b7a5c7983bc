// A store's extra capability is declared on the StateStore interface (shared), not found by
// testing its class: a Redis store offers its connection and node cache, the memory store none,
// and the token store follows the capability.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { openTokenStore } from "../../../scheduler/auth/token-stores.js";
import { MemoryStateStore } from "../../../scheduler/backends/memory.js";
import { RedisStateStore } from "../../../scheduler/backends/redis-state.js";
import type { StateStore } from "../../../scheduler/backends/types.js";
import { testServices, uniquePrefix } from "../../helpers/services.js";

describe("StateStore.shared", () => {
  it("is absent in memory: tokens live in <dataDir>/tokens.json", async () => {
    const store: StateStore = new MemoryStateStore();
    expect(store.shared).toBeUndefined();
    const dataDir = mkdtempSync(path.join(tmpdir(), "distx-cap-"));
    const tokens = await openTokenStore({ dataDir, redisPrefix: "unused" }, store);
    expect(tokens.constructor.name).toBe("MemoryTokenStore");
    await store.close();
  });

  it("offers a Redis store's connection and node cache, and tokens go to that Redis", async () => {
    const prefix = uniquePrefix("cap");
    const store: StateStore = await RedisStateStore.connect({ url: testServices().redis, prefix });
    try {
      const shared = store.shared;
      expect(shared).toBeDefined();
      expect(await shared!.redis.ping()).toBe("PONG");
      await shared!.putNode("node-cap", "{}", 5_000);
      const tokens = await openTokenStore({ dataDir: "/nonexistent", redisPrefix: prefix }, store);
      expect(tokens.constructor.name).toBe("RedisTokenStore");
    } finally {
      await store.close();
    }
  });
});
