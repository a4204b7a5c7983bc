// `distx token create|list|revoke` and how the CLI finds its token (--token, --token-file,
// DISTX_TOKEN, the client profile), as a user runs them: real CLI processes against a real
// scheduler process; and --insecure, which turns authentication off.
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliEntry } from "../../../cli/local-cluster.js";
import { repoRoot } from "../../../common/paths.js";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";

const run = promisify(execFile);
/** A DISTX_HOME with nothing in it: no profile, no admin.token to fall back on. */
const emptyHome = mkdtempSync(path.join(os.tmpdir(), "distx-empty-home-"));
/** The secure cluster's CA, which every CLI call verifies the scheduler against (DISTX_CA). */
let caFile = "";

async function distx(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const base: NodeJS.ProcessEnv = { ...process.env, DISTX_HOME: emptyHome, ...(caFile ? { DISTX_CA: caFile } : {}) };
  delete base.DISTX_TOKEN;
  delete base.DISTX_TOKEN_FILE;
  try {
    const { stdout, stderr } = await run(process.execPath, [cliEntry(), ...args], { env: { ...base, ...env }, cwd: repoRoot(), timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe("distx token and the CLI's credentials", () => {
  let t: TestCluster;
  let s: string[];
  beforeAll(async () => {
    t = await startTestCluster("cli-tokens", { agents: 0 });
    caFile = t.cluster.credentialFiles().caFile;
    s = ["--scheduler", t.address];
  });
  afterAll(async () => t?.stop());

  it("refuses a command without credentials, saying how to give them", async () => {
    const r = await distx(["jobs", ...s]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/distx: UNAUTHENTICATED: no credentials: pass --token or DISTX_TOKEN/);
  });

  it("creates a token (printed once, alone on stdout), lists it without its secret, and revokes it", async () => {
    const created = await distx(["token", "create", "--role", "submit", "--tenant", "t1", "--ttl", "24h", "--description", "ci runner", ...s, "--token", t.adminToken]);
    expect(created.code, created.stderr).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^dxa_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).toMatch(/role submit, tenant t1, expires \d{4}-.*not shown again/);
    const id = token.split("_")[1]!;
    const secret = token.slice(`dxa_${id}_`.length);

    // --token-file, and DISTX_TOKEN.
    const adminFile = path.join(mkdtempSync(path.join(os.tmpdir(), "distx-tok-")), "admin.token");
    writeFileSync(adminFile, t.adminToken + "\n", { mode: 0o600 });
    const list = await distx(["token", "list", ...s, "--token-file", adminFile]);
    expect(list.code, list.stderr).toBe(0);
    const row = list.stdout.split("\n").find((l) => l.includes(id))!;
    expect(row).toMatch(/api .* submit .* t1 /);
    expect(row).toContain(`…${token.slice(-4)}`);
    expect(row).toContain("ci runner");
    expect(list.stdout).not.toContain(secret);

    const jobs = await distx(["jobs", ...s], { DISTX_TOKEN: token });
    expect(jobs.code, jobs.stderr).toBe(0);
    const nodes = await distx(["nodes", ...s], { DISTX_TOKEN: token });
    expect(nodes.code).toBe(1);
    expect(nodes.stderr).toMatch(/PERMISSION_DENIED: ListNodes needs role admin or higher; token [0-9a-f]{16} has role submit/);

    const revoked = await distx(["token", "revoke", id, ...s, "--token", t.adminToken]);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toContain(`revoked token ${id}`);
    const after = await distx(["jobs", ...s], { DISTX_TOKEN: token });
    expect(after.code).toBe(1);
    expect(after.stderr).toMatch(new RegExp(`UNAUTHENTICATED: token ${id} was revoked`));
    expect(after.stderr).not.toContain(secret);
    const listed = await distx(["token", "list", "--all", "--json", ...s, "--token", t.adminToken]);
    const info = (JSON.parse(listed.stdout) as { id: string; revokedAtMs: number }[]).find((k) => k.id === id)!;
    expect(info.revokedAtMs).toBeGreaterThan(0);
  }, 240_000); // nine CLI processes, each a Node start

  it("finds the token through the client profile in DISTX_HOME", async () => {
    const home = mkdtempSync(path.join(os.tmpdir(), "distx-home-"));
    writeFileSync(path.join(home, "my.token"), t.adminToken + "\n", { mode: 0o600 });
    writeFileSync(path.join(home, "client.json"), JSON.stringify({ scheduler: t.address, tokenFile: "my.token" }));
    const r = await distx(["nodes", ...s], { DISTX_HOME: home });
    expect(r.code, r.stderr).toBe(0);
  });

  it("says what is wrong with bad token arguments (exit 2)", async () => {
    const role = await distx(["token", "create", "--role", "boss", ...s, "--token", t.adminToken]);
    expect(role.code).toBe(2);
    expect(role.stderr).toMatch(/--role must be read, submit or admin/);
    const ttl = await distx(["token", "create", "--role", "read", "--ttl", "5x", ...s, "--token", t.adminToken]);
    expect(ttl.code).toBe(2);
    expect(ttl.stderr).toMatch(/--ttl "5x": use a number with a unit/);
    const tenant = await distx(["token", "create", "--role", "read", "--tenant", "Bad Tenant!", ...s, "--token", t.adminToken]);
    expect(tenant.code).toBe(1);
    expect(tenant.stderr).toMatch(/INVALID_ARGUMENT: tenant "Bad Tenant!" must match/);
    const missing = await distx(["jobs", ...s, "--token-file", path.join(emptyHome, "nope.token")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot read token file .*nope\.token/);
  }, 180_000);
});

describe("--insecure", () => {
  let t: TestCluster;
  beforeAll(async () => {
    t = await startTestCluster("cli-insecure", { agents: 0, insecure: true });
  });
  afterAll(async () => t?.stop());

  it("serves callers without credentials, and warns in its log", async () => {
    const r = await distx(["nodes", "--scheduler", t.address, "--insecure"]);
    expect(r.code, r.stderr).toBe(0);
    const { readFileSync } = await import("node:fs");
    expect(readFileSync(path.join(t.cluster.logDir!, "scheduler.log"), "utf8")).toMatch(/"event":"insecure"/);
  });
});
