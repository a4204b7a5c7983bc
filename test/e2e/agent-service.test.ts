// The agent as an installed service: the shipped systemd units pass `systemd-analyze verify`;
// `distx agent install` writes a unit that does too and a config the agent really starts from
// (it joins a real scheduler with the stored join token and CA pin, under the unit's user-less
// test stand-in); bad settings are refused before anything is written; uninstall removes it all.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentConfigSchema, loadConfig } from "../../common/config.js";
import { repoRoot } from "../../common/paths.js";
import { startTestCluster, type TestCluster } from "../helpers/cluster.js";

const repo = repoRoot();
const distx = path.join(repo, "bin", "distx.js");
const work = mkdtempSync(path.join(os.tmpdir(), "distx-service-"));
let c: TestCluster;

beforeAll(async () => {
  c = await startTestCluster("agent-service", { agents: 0 });
}, 60_000);
afterAll(async () => {
  await c?.stop();
});

function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [distx, ...args], { encoding: "utf8", env: { ...process.env, ...env }, timeout: 60_000 });
}

/** systemd-analyze verify's complaints about a unit (empty: none). */
function verify(unitFile: string): string {
  const r = spawnSync("systemd-analyze", ["verify", unitFile], { encoding: "utf8" });
  return `${r.status === 0 ? "" : `exit ${r.status}\n`}${r.stdout}${r.stderr}`.trim();
}

describe("systemd units", () => {
  it.each(["distx-agent.service", "distx-scheduler.service"])("the shipped %s verifies cleanly, hardened and draining on stop", (unit) => {
    const text = readFileSync(path.join(repo, "deploy", "systemd", unit), "utf8");
    // verify checks that ExecStart's program exists: point it at this checkout's.
    const file = path.join(work, unit);
    writeFileSync(file, text.replace(/^ExecStart=\/usr\/bin\/distx/m, `ExecStart=${process.execPath} ${distx}`));
    expect(verify(file)).toBe("");
    for (const setting of ["User=distx", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "KillSignal=SIGTERM", "Restart=on-failure", "CapabilityBoundingSet="]) {
      expect(text, setting).toMatch(new RegExp(`^${setting}$`, "m"));
    }
    // Stop waits past the drain grace (default 30 s) before it kills.
    expect(Number(/^TimeoutStopSec=(\d+)$/m.exec(text)?.[1])).toBeGreaterThan(30);
  });
});

describe("distx agent install / uninstall", () => {
  const units = path.join(work, "units");
  const etc = path.join(work, "etc");

  it("refuses bad settings with a clear message and writes nothing", () => {
    const r = run(["agent", "install", "--scheduler", "no port here", "--ca-hash", "sha256:1234", "--user", "root", "--no-create-user", "--unit-dir", units, "--config-dir", etc, "--no-systemctl"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/invalid agent settings: scheduler: must be host:port.*caHash: must be sha256:<64 hex digits>/);
    expect(existsSync(units) || existsSync(etc)).toBe(false);
    const share = run(["agent", "install", "--scheduler", "127.0.0.1:1", "--ca-hash", `sha256:${"a".repeat(64)}`, "--max-host-load", "1.5", "--user", "root", "--no-create-user", "--unit-dir", units, "--config-dir", etc, "--no-systemctl"]);
    expect(share.status).toBe(2);
    expect(share.stderr).toMatch(/invalid agent settings: maxHostLoad:/);
    expect(existsSync(units) || existsSync(etc)).toBe(false);
  });

  it("writes a unit that verifies and a config the agent joins the cluster with; uninstall removes them", async () => {
    const { token, caHash } = await c.client.createJoinToken({ uses: 1, ttlMs: 600_000 });
    const r = run(["agent", "install", "--scheduler", c.address, "--join-token", token, "--ca-hash", caHash, "--labels", "zone=test,svc=yes", "--workers", "1", "--reserve-cores", "0", "--max-host-load", "0.95", "--give-back-host-load", "0.99", "--host-load-grace-ms", "30000", "--user", "root", "--no-create-user", "--unit-dir", units, "--config-dir", etc, "--no-systemctl"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);

    const unitFile = path.join(units, "distx-agent.service");
    expect(verify(unitFile)).toBe("");
    const unit = readFileSync(unitFile, "utf8");
    const exec = /^ExecStart=(.*)$/m.exec(unit)![1]!;
    expect(exec).toBe(`${process.execPath} --initial-old-space-size=128 ${distx} agent --config ${path.join(etc, "agent.json")}`);
    expect(unit).toMatch(/^User=root$/m);

    // The token is a credential: only its owner reads it, and it is not in the config or the unit.
    expect(statSync(path.join(etc, "join-token")).mode & 0o777).toBe(0o600);
    expect(readFileSync(path.join(etc, "agent.json"), "utf8")).not.toContain(token);
    expect(unit).not.toContain(token);
    const config = loadConfig(agentConfigSchema, { file: path.join(etc, "agent.json"), section: "agent", env: {} });
    expect(config).toMatchObject({ scheduler: c.address, caHash, workers: 1, labels: { zone: "test", svc: "yes" }, reserveCores: 0, maxHostLoad: 0.95, giveBackHostLoad: 0.99, hostLoadGraceMs: 30_000 });

    // What systemd would run: the unit's command line, with the unit's DISTX_HOME stand-in.
    const [node, ...args] = exec.split(" ");
    const agent = spawn(node!, args, { env: { ...process.env, DISTX_HOME: path.join(work, "state") }, stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    agent.stdout!.on("data", (d: Buffer) => (log += d.toString()));
    agent.stderr!.on("data", (d: Buffer) => (log += d.toString()));
    try {
      const deadline = Date.now() + 60_000;
      let ready = false;
      while (!ready && Date.now() < deadline && agent.exitCode === null) {
        ready = (await c.client.listNodes()).some((n) => n.state === "NODE_STATE_READY" && n.profile?.labels?.svc === "yes");
        if (!ready) await new Promise((res) => setTimeout(res, 200));
      }
      expect(ready, `the installed agent did not join:\n${log}`).toBe(true);
    } finally {
      agent.kill("SIGTERM");
      await new Promise((res) => agent.once("exit", res));
    }
    expect(agent.exitCode ?? agent.signalCode).toBe(0); // drained and exited cleanly on SIGTERM

    const u = run(["agent", "uninstall", "--unit-dir", units, "--config-dir", etc, "--no-systemctl"]);
    expect(u.status).toBe(0);
    for (const f of [unitFile, path.join(etc, "agent.json"), path.join(etc, "join-token")]) expect(existsSync(f), f).toBe(false);
  }, 120_000);
});
