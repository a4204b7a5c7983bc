// `distx agent install` / `distx agent uninstall`: the agent as a systemd service on this machine.
// The unit comes from deploy/systemd/distx-agent.service (shipped in the package) with this
// machine's paths; the settings go to <config-dir>/agent.json, checked by the same schema the
// agent loads them with, so a bad value is refused here and not at the service's first start.
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { agentConfigSchema } from "../../common/config.js";
import { repoRoot } from "../../common/paths.js";
import { fail, UsageError } from "../util.js";

export const AGENT_UNIT = "distx-agent.service";

export interface AgentInstallOptions {
  scheduler: string;
  joinToken?: string;
  joinTokenFile?: string;
  caHash?: string;
  ca?: string;
  labels?: string;
  workers?: string;
  name?: string;
  /** Sharing the machine with its owner (docs/operations.md, "Sharing the machine"). */
  reserveCores?: string;
  maxHostLoad?: string;
  giveBackHostLoad?: string;
  hostLoadGraceMs?: string;
  user: string;
  unitDir: string;
  configDir: string;
  /** Create the service user when it does not exist. */
  createUser: boolean;
  /** Run systemctl daemon-reload and enable --now (default: when systemd runs this machine). */
  systemctl: boolean;
}

const systemdRuns = (): boolean => existsSync("/run/systemd/system");

function userIds(user: string): { uid: number; gid: number } | undefined {
  const id = (flag: string) => spawnSync("id", [flag, user], { encoding: "utf8" });
  const u = id("-u");
  const g = id("-g");
  return u.status === 0 && g.status === 0 ? { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) } : undefined;
}

/** The shipped unit with this machine's node, distx script, user and config file. */
export function renderAgentUnit(o: Pick<AgentInstallOptions, "user" | "configDir">): string {
  const template = readFileSync(path.join(repoRoot(), "deploy", "systemd", AGENT_UNIT), "utf8");
  // node by absolute path: systemd's PATH may not hold it (nvm, /usr/local), and the script's
  // shebang would look it up there.
  const distx = realpathSync(path.join(repoRoot(), "bin", "distx.js"));
  const exec = `${process.execPath} --initial-old-space-size=128 ${distx} agent --config ${path.join(o.configDir, "agent.json")}`;
  return template
    .replace(/^ExecStart=.*$/m, `ExecStart=${exec}`)
    .replace(/^User=.*$/m, `User=${o.user}`)
    .replace(/^Group=.*$/m, `Group=${o.user}`);
}

/** The agent section written to agent.json, validated as the agent will load it. */
export function agentSettings(o: AgentInstallOptions): Record<string, unknown> {
  if (o.joinToken && o.joinTokenFile) throw new UsageError("give --join-token or --join-token-file, not both");
  const settings: Record<string, unknown> = { scheduler: o.scheduler };
  if (o.workers !== undefined) settings.workers = Number(o.workers);
  if (o.labels) settings.labels = o.labels;
  if (o.name) settings.name = o.name;
  // Numbers as the agent's own flags take them; the schema below says what is out of range.
  if (o.reserveCores !== undefined) settings.reserveCores = Number(o.reserveCores);
  if (o.maxHostLoad !== undefined) settings.maxHostLoad = Number(o.maxHostLoad);
  if (o.giveBackHostLoad !== undefined) settings.giveBackHostLoad = Number(o.giveBackHostLoad);
  if (o.hostLoadGraceMs !== undefined) settings.hostLoadGraceMs = Number(o.hostLoadGraceMs);
  if (o.caHash) settings.caHash = o.caHash;
  if (o.ca) settings.ca = path.resolve(o.ca);
  if (o.joinToken || o.joinTokenFile) settings.joinTokenFile = path.join(o.configDir, "join-token");
  const parsed = agentConfigSchema.safeParse(settings);
  if (!parsed.success) {
    throw new UsageError(`invalid agent settings: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(config)"}: ${i.message}`).join("; ")}`);
  }
  if (!o.caHash && !o.ca) throw new UsageError("give --ca-hash (printed by `distx join-token create`) or --ca: the agent must know which scheduler to trust");
  return settings;
}

export function installAgent(o: AgentInstallOptions, say: (line: string) => void): void {
  const settings = agentSettings(o);
  const token = o.joinToken ?? (o.joinTokenFile ? readFileSync(o.joinTokenFile, "utf8").trim() : undefined);
  let ids = userIds(o.user);
  if (!ids && o.createUser) {
    execFileSync("useradd", ["--system", "--no-create-home", "--home-dir", "/var/lib/distributex", "--shell", "/usr/sbin/nologin", o.user]);
    say(`created system user ${o.user}`);
    ids = userIds(o.user);
  }
  if (!ids) throw new UsageError(`no user ${o.user} on this machine (create it, or leave out --no-create-user)`);

  mkdirSync(o.configDir, { recursive: true, mode: 0o755 });
  const configFile = path.join(o.configDir, "agent.json");
  writeFileSync(configFile, `${JSON.stringify({ agent: settings }, null, 2)}\n`, { mode: 0o644 });
  chmodSync(configFile, 0o644);
  say(`wrote ${configFile}`);
  if (token) {
    // Readable by the service user only: it is a credential until the agent has joined.
    const tokenFile = path.join(o.configDir, "join-token");
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    chmodSync(tokenFile, 0o600);
    chownSync(tokenFile, ids.uid, ids.gid);
    say(`wrote ${tokenFile} (mode 0600, owner ${o.user})`);
  }
  mkdirSync(o.unitDir, { recursive: true });
  const unitFile = path.join(o.unitDir, AGENT_UNIT);
  writeFileSync(unitFile, renderAgentUnit(o), { mode: 0o644 });
  say(`wrote ${unitFile}`);
  if (o.systemctl) {
    execFileSync("systemctl", ["daemon-reload"], { stdio: "inherit" });
    execFileSync("systemctl", ["enable", "--now", AGENT_UNIT], { stdio: "inherit" });
    say(`started ${AGENT_UNIT}; logs: journalctl -u ${AGENT_UNIT.replace(/\.service$/, "")} -f`);
  } else {
    say(`to start it: systemctl daemon-reload && systemctl enable --now ${AGENT_UNIT}`);
  }
}

export function uninstallAgent(o: Pick<AgentInstallOptions, "unitDir" | "configDir" | "systemctl">, say: (line: string) => void): void {
  const unitFile = path.join(o.unitDir, AGENT_UNIT);
  if (o.systemctl && existsSync(unitFile)) {
    // Stopping drains: running tasks finish within the unit's TimeoutStopSec.
    execFileSync("systemctl", ["disable", "--now", AGENT_UNIT], { stdio: "inherit" });
  }
  for (const f of [unitFile, path.join(o.configDir, "agent.json"), path.join(o.configDir, "join-token")]) {
    if (existsSync(f)) {
      rmSync(f);
      say(`removed ${f}`);
    }
  }
  if (o.systemctl) execFileSync("systemctl", ["daemon-reload"], { stdio: "inherit" });
  say("the agent's key and node certificate stay in /var/lib/distributex (remove the node with `distx node remove`, then the folder)");
}

export function registerServiceCommands(agent: Command): void {
  agent
    .command("install")
    .description("install this machine's agent as a systemd service (unit + /etc/distributex/agent.json), then start it")
    .requiredOption("-s, --scheduler <host:port,...>", "the scheduler (active and standbys)")
    .option("--join-token <token>", "join token from `distx join-token create` (stored in <config-dir>/join-token, mode 0600)")
    .option("--join-token-file <file>", "read the join token from this file")
    .option("--ca-hash <sha256:hex>", "the cluster CA pin printed with the join token")
    .option("--ca <file>", "the cluster CA certificate (instead of the pin)")
    .option("-l, --labels <k=v,...>", "node labels for job node selectors")
    .option("-w, --workers <n>", "kernel worker threads; 0 = one per core")
    .option("--name <name>", "a name for this agent in logs")
    .option("--reserve-cores <n>", "cores left to the machine's owner (the agent runs fewer workers)")
    .option("--max-host-load <fraction>", "back off (take no new work) above this host load, 0..1")
    .option("--give-back-host-load <fraction>", "while backing off, give queued tasks back at once above this host load")
    .option("--host-load-grace-ms <ms>", "while backing off, give queued tasks back after this long")
    .option("--user <user>", "the unprivileged user the service runs as", "distx")
    .option("--no-create-user", "fail if the user does not exist instead of creating it")
    .option("--unit-dir <dir>", "where the unit goes", "/etc/systemd/system")
    .option("--config-dir <dir>", "where agent.json (and the join token) go", "/etc/distributex")
    .option("--no-systemctl", "write the files only; do not reload, enable or start")
    .action((opts: AgentInstallOptions) => {
      try {
        installAgent({ ...opts, systemctl: opts.systemctl && systemdRuns() }, (l) => console.log(`distx agent install: ${l}`));
      } catch (err) {
        fail(err);
      }
    });
  agent
    .command("uninstall")
    .description("stop (draining) and remove the agent's systemd service and its config")
    .option("--unit-dir <dir>", "where the unit is", "/etc/systemd/system")
    .option("--config-dir <dir>", "where agent.json is", "/etc/distributex")
    .option("--no-systemctl", "remove the files only")
    .action((opts: Pick<AgentInstallOptions, "unitDir" | "configDir" | "systemctl">) => {
      try {
        uninstallAgent({ ...opts, systemctl: opts.systemctl && systemdRuns() }, (l) => console.log(`distx agent uninstall: ${l}`));
      } catch (err) {
        fail(err);
      }
    });
}
