// The Redis ACL operators are told to grant (docs/security-backends.md) is generated from the list
// the backends own (scheduler/backends/redis-commands.ts); the backend tests check that list
// against what the code really sends (test/helpers/redis-audit.ts).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { REDIS_COMMANDS, redisAclRule, redisCommandName } from "../../scheduler/backends/redis-commands.js";

describe("Redis command list", () => {
  it("the ACL line in docs/security-backends.md is the one the backends' list makes", () => {
    const docs = readFileSync(new URL("../../docs/security-backends.md", import.meta.url), "utf8");
    const line = docs.split("\n").find((l) => l.startsWith("user distx on >CHANGE-ME "));
    expect(line, "docs/security-backends.md has no `user distx on >CHANGE-ME …` line").toBeDefined();
    expect(line).toBe(`user distx on >CHANGE-ME ${redisAclRule("distx")}`);
  });

  it("names sent commands as ACL rules do, subcommands included", () => {
    expect(redisCommandName(["CLIENT", "SETNAME", "distx"])).toBe("client|setname");
    expect(redisCommandName(["EVALSHA", "abc", "0"])).toBe("evalsha");
    expect(redisCommandName(["client"])).toBe("client");
    expect(new Set(REDIS_COMMANDS).size).toBe(REDIS_COMMANDS.length);
    for (const c of REDIS_COMMANDS) expect(c).toMatch(/^[a-z]+(\|[a-z]+)?$/);
  });
});
