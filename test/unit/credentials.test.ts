// Where a client takes its token from (client/credentials.ts), in order, and that a local admin
// token is never sent to a remote address it was not written for.
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { forgetClusterToken, isLoopbackAddress, rememberClusterToken, resolveToken } from "../../client/credentials.js";

function home(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "distx-cred-"));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text, { mode: 0o600 });
  return dir;
}

describe("client credentials", () => {
  it("takes the explicit token, then a started cluster's, then DISTX_TOKEN, then the profile, then admin.token", () => {
    const dir = home({ "admin.token": "dxa_admin\n", "p.token": "dxa_profile\n", "client.json": JSON.stringify({ scheduler: "10.0.0.5:7070", tokenFile: "p.token" }) });
    const env = { DISTX_HOME: dir, DISTX_TOKEN: "dxa_env" };
    expect(resolveToken("127.0.0.1:7070", { token: "dxa_flag" }, env)).toBe("dxa_flag");
    expect(resolveToken("127.0.0.1:7070", { tokenFile: path.join(dir, "admin.token") }, env)).toBe("dxa_admin");
    expect(resolveToken("127.0.0.1:7070", { token: null }, env)).toBeUndefined();
    const started = home({ "admin.token": "dxa_started" });
    rememberClusterToken("127.0.0.1:7171", path.join(started, "admin.token"));
    expect(resolveToken("127.0.0.1:7171", {}, env)).toBe("dxa_started");
    forgetClusterToken("127.0.0.1:7171");
    expect(resolveToken("127.0.0.1:7070", {}, env)).toBe("dxa_env");
    expect(resolveToken("127.0.0.1:7070", {}, { DISTX_HOME: dir })).toBe("dxa_profile");
    expect(resolveToken("127.0.0.1:7070", {}, { DISTX_HOME: home({ "admin.token": "dxa_only_admin" }) })).toBe("dxa_only_admin");
    expect(resolveToken("127.0.0.1:7070", {}, { DISTX_HOME: home({}) })).toBeUndefined();
  });

  it("sends the profile's token only to its scheduler or this machine, and admin.token only to this machine", () => {
    const dir = home({ "admin.token": "dxa_admin", "p.token": "dxa_profile", "client.json": JSON.stringify({ scheduler: "10.0.0.5:7070", tokenFile: "p.token" }) });
    expect(resolveToken("10.0.0.5:7070", {}, { DISTX_HOME: dir })).toBe("dxa_profile");
    expect(resolveToken("evil.example:7070", {}, { DISTX_HOME: dir })).toBeUndefined();
    expect(resolveToken("evil.example:7070", {}, { DISTX_HOME: home({ "admin.token": "dxa_admin" }) })).toBeUndefined();
    for (const a of ["127.0.0.1:1", "localhost:7070", "[::1]:7070", "127.1.2.3:9"]) expect(isLoopbackAddress(a)).toBe(true);
    for (const a of ["10.0.0.5:7070", "[2001:db8::1]:7070", "evil.example:7070", "127.0.0.1.evil.example:7070"]) expect(isLoopbackAddress(a)).toBe(false);
  });

  it("refuses a token file that is missing when named, or too large to be one", () => {
    const dir = home({ "big.token": "x".repeat(5000) });
    expect(() => resolveToken("127.0.0.1:7070", { tokenFile: path.join(dir, "none") }, {})).toThrow(/cannot read token file/);
    expect(() => resolveToken("127.0.0.1:7070", { tokenFile: path.join(dir, "big.token") }, {})).toThrow(/a token file holds one token/);
  });
});
