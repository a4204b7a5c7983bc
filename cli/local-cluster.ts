// Starts a scheduler and agents as separate OS processes on this machine, the way an
// operator would, and waits until every agent is registered. Used by `distx up`, `distx demo`
// and the end-to-end tests.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, type WriteStream } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { DistributeXClient } from "../client/index.js";
import { forgetClusterToken, registerCredentialResolver, rememberClusterToken } from "../client/credentials.js";

const portOf = (address: string): string => /:(\d+)$/.exec(address)?.[1] ?? "";
import { repoRoot } from "../common/paths.js";

export interface LocalClusterOptions {
  agents: number;
  workersPerAgent?: number;
  port?: number;
  /** Extra CLI flags for the scheduler / for agent i. */
  schedulerArgs?: string[];
  agentArgs?: (index: number) => string[];
  /** Where process logs go: "inherit" (this terminal) or a folder for one file per process. */
  logs: "inherit" | string;
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
  /** Extra node flags for every process (e.g. --cpu-prof for a profile of each). */
  nodeArgs?: string[];
  /** Give every process an admin HTTP server on a free port (default true); see adminAddress(). */
  adminPorts?: boolean;
  /** The scheduler's admin HTTP port (metrics, dashboard) instead of a free one (distx up --admin-port). */
  schedulerAdminPort?: number;
  /** Called when a process exits on its own (not by stop()), with a sentence saying which and why. */
  onUnexpectedExit?: (proc: ClusterProcess, why: string) => void;
  /** The cluster data dir (PKI, tokens, client profile); default a fresh temporary folder. */
  dataDir?: string;
  /** Write <dataDir>/client.json naming this cluster's scheduler (distx up). */
  writeProfile?: boolean;
  /** No TLS, no tokens (every process gets --insecure). */
  insecure?: boolean;
  /** The `distx` entry point the processes run (default this checkout's dist/cli/main.js): a bench runs another build as its baseline. */
  cliEntry?: string;
}

export interface ClusterProcess {
  name: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  /** The last error or fatal line the process logged (its message and error), if any. */
  lastError?: string;
}

/** "agent-1 (pid 42) was killed by SIGKILL" / "... exited with code 1; its last error: ...". */
function describeExit(proc: ClusterProcess, code: number | null, signal: NodeJS.Signals | null): string {
  const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
  return `${proc.name} (pid ${proc.child.pid}) ${how}${proc.lastError ? `; its last error: ${proc.lastError}` : ""}`;
}

export const cliEntry = (): string => path.join(repoRoot(), "dist", "cli", "main.js");

/**
 * Node flags for the scheduler and agent daemons (bin/distx.js carries the same in its shebang,
 * the Dockerfile in its entry point). V8 starts a heap with an old-generation limit of a few tens
 * of MB and raises it slowly; with task data passing through at tens of MB/s, the daemons then ran
 * a full mark-compact every 30–80 ms (--trace-gc), which cost more CPU than the work itself for
 * 32 KiB tasks. A 128 MB start removes nearly all of them; it is a limit, not a reservation.
 */
export const DAEMON_NODE_FLAGS = ["--initial-old-space-size=128"];

export class LocalCluster {
  readonly processes: ClusterProcess[] = [];
  address = "";
  /** Admin HTTP address (host:port) of each process by name, as it logs `admin_listening`. */
  readonly admin = new Map<string, string>();
  private readonly adminWaiters = new Map<string, ((address: string) => void)[]>();
  private readonly logFiles: WriteStream[] = [];
  private stopping = false;

  /** PKI, tokens and the agents' identities live here (docs/security.md). */
  readonly dataDir: string;
  /** Ports of the schedulers this cluster spawned: clients in this process for them get its CA and admin token. */
  private readonly schedulerPorts = new Set<string>();
  private agentSeq = 0;
  private readonly unregister: () => void;

  private readonly ownsDataDir: boolean;
  private readonly remembered = new Set<string>();

  constructor(private readonly options: LocalClusterOptions) {
    this.ownsDataDir = options.dataDir === undefined;
    this.dataDir = options.dataDir ?? mkdtempSync(path.join(os.tmpdir(), "distx-cluster-"));
    this.unregister = registerCredentialResolver((address) => {
      if (options.insecure) return this.schedulerPorts.has(portOf(address)) ? { insecure: true } : undefined;
      if (!this.schedulerPorts.has(portOf(address))) return undefined;
      const paths = this.credentialFiles();
      if (!existsSync(paths.caFile)) return undefined;
      return { ca: readFileSync(paths.caFile), token: existsSync(paths.tokenFile) ? readFileSync(paths.tokenFile, "utf8").trim() : undefined };
    });
  }

  credentialFiles(): { caFile: string; tokenFile: string } {
    return { caFile: path.join(this.dataDir, "pki", "ca.crt"), tokenFile: path.join(this.dataDir, "admin.token") };
  }

  /** Environment for a `distx` process run against this cluster: its CA and admin token (or --insecure). */
  clientEnv(): NodeJS.ProcessEnv {
    if (this.options.insecure) return { ...process.env, DISTX_INSECURE: "1" };
    const { caFile, tokenFile } = this.credentialFiles();
    return { ...process.env, DISTX_CA: caFile, DISTX_TOKEN_FILE: tokenFile };
  }

  /** The bootstrap admin token's file (written by the scheduler at its first start). */
  get adminTokenFile(): string {
    return path.join(this.dataDir, "admin.token");
  }

  /** The admin token, once the scheduler has started. */
  get adminToken(): string {
    return readFileSync(this.adminTokenFile, "utf8").trim();
  }

  /** The security flags a daemon gets: its data dir, and how local agents join. */
  private securityArgs(args: string[]): string[] {
    const role = args[0];
    if (role !== "scheduler" && role !== "agent") return [];
    if (this.options.insecure) return args.includes("--insecure") ? [] : ["--insecure"];
    const joinFile = path.join(this.dataDir, "local-join.token");
    if (role === "scheduler") {
      const port = args[args.indexOf("--port") + 1];
      if (args.includes("--port") && port && port !== "0") this.schedulerPorts.add(port);
      return args.includes("--data-dir") ? [] : ["--data-dir", this.dataDir, "--bootstrap-join-token-file", joinFile];
    }
    if (args.includes("--data-dir")) return [];
    // A fresh identity per agent process, so a restarted agent is a new node as before.
    const name = args[args.indexOf("--name") + 1] ?? "agent";
    return ["--data-dir", path.join(this.dataDir, "agents", `${name}-${process.pid}-${this.agentSeq++}`), "--join-token-file", joinFile, "--ca", this.credentialFiles().caFile];
  }

  /** The folder holding one log file per process, when logs go to files. */
  get logDir(): string | undefined {
    return this.options.logs === "inherit" ? undefined : this.options.logs;
  }

  spawnProcess(name: string, args: string[], entry?: string): ClusterProcess {
    args = [...args, ...this.securityArgs(args)];
    const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, ...(this.options.nodeArgs ?? []), entry ?? this.options.cliEntry ?? cliEntry(), ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, DISTX_DATA_DIR: this.dataDir, ...this.options.env },
    });
    let sink: NodeJS.WritableStream = process.stdout;
    if (this.options.logs !== "inherit") {
      mkdirSync(this.options.logs, { recursive: true });
      const file = createWriteStream(path.join(this.options.logs, `${name}.log`), { flags: "a" });
      this.logFiles.push(file);
      sink = file;
    }
    child.stdout!.pipe(sink, { end: false });
    child.stderr!.pipe(sink, { end: false });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 : null))));
    const proc: ClusterProcess = { name, child, exited };
    child.on("exit", (code, signal) => {
      if (!this.stopping) this.options.onUnexpectedExit?.(proc, describeExit(proc, code, signal));
    });
    createInterface({ input: child.stderr! }).on("line", (line) => {
      if (line.trim()) proc.lastError = line.trim().slice(0, 500); // uncaught errors land on stderr
    });
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (line.includes('"level":50') || line.includes('"level":60')) {
        try {
          const entry = JSON.parse(line) as { msg?: string; err?: unknown };
          proc.lastError = [entry.msg, typeof entry.err === "string" ? entry.err : undefined].filter(Boolean).join(": ").slice(0, 500);
        } catch {
          // not a log line
        }
      }
      if (line.includes('"event":"listening"')) {
        // Clients of this scheduler made in this process carry the cluster's admin token.
        try {
          const entry = JSON.parse(line) as { event?: string; address?: string };
          if (entry.event === "listening" && entry.address) {
            rememberClusterToken(entry.address, this.adminTokenFile);
            this.remembered.add(entry.address);
          }
        } catch {
          // not a log line
        }
        return;
      }
      if (!line.includes('"admin_listening"')) return;
      try {
        const entry = JSON.parse(line) as { event?: string; address?: string };
        if (entry.event !== "admin_listening" || !entry.address) return;
        this.admin.set(name, entry.address);
        for (const w of this.adminWaiters.get(name) ?? []) w(entry.address);
        this.adminWaiters.delete(name);
      } catch {
        // not a log line
      }
    });
    this.processes.push(proc);
    return proc;
  }

  async start(): Promise<string> {
    const adminArgs = this.options.adminPorts === false ? [] : ["--admin-port", String(this.options.schedulerAdminPort ?? 0)];
    const scheduler = this.spawnProcess("scheduler", ["scheduler", "--port", String(this.options.port ?? 0), ...adminArgs, ...(this.options.schedulerArgs ?? [])]);
    this.address = await waitForListening(scheduler, this.options.readyTimeoutMs ?? 30_000);
    this.schedulerPorts.add(portOf(this.address));
    if (this.options.writeProfile && !this.options.insecure) {
      const profile = { scheduler: this.address, ...this.credentialFiles() };
      writeFileSync(path.join(this.dataDir, "client.json"), JSON.stringify(profile, null, 2) + "\n", { mode: 0o600 });
    }
    rememberClusterToken(this.address, this.adminTokenFile);
    this.remembered.add(this.address);
    for (let i = 0; i < this.options.agents; i++) this.startAgent(i);
    await this.waitForNodes(this.options.agents);
    return this.address;
  }

  /** `entry`: another build's `distx` for this agent (a rolling upgrade runs two versions side by side). */
  startAgent(index: number, extraArgs: string[] = [], entry?: string): ClusterProcess {
    const adminArgs = this.options.adminPorts === false ? [] : ["--admin-port", "0"];
    const args = ["agent", "--scheduler", this.address, "--name", `agent-${index}`, ...adminArgs, ...(this.options.agentArgs?.(index) ?? []), ...extraArgs];
    if (this.options.workersPerAgent) args.push("--workers", String(this.options.workersPerAgent));
    return this.spawnProcess(`agent-${index}`, args, entry);
  }

  /** The admin HTTP address of process `name` ("scheduler", "agent-0", ...), once it has logged it. */
  adminAddress(name: string, timeoutMs = 30_000): Promise<string> {
    const known = this.admin.get(name);
    if (known) return Promise.resolve(known);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not report an admin address within ${timeoutMs} ms`)), timeoutMs);
      const list = this.adminWaiters.get(name) ?? [];
      list.push((a) => {
        clearTimeout(timer);
        resolve(a);
      });
      this.adminWaiters.set(name, list);
    });
  }

  /** Waits until at least `count` nodes are ready. */
  async waitForNodes(count: number): Promise<void> {
    const client = new DistributeXClient(this.address);
    const deadline = Date.now() + (this.options.readyTimeoutMs ?? 60_000);
    try {
      for (;;) {
        const nodes = await client.listNodes().catch(() => []);
        if (nodes.filter((n) => n.state === "NODE_STATE_READY").length >= count) return;
        const dead = this.processes.find((p) => p.child.exitCode !== null);
        if (dead) throw new Error(`${dead.name} exited with code ${dead.child.exitCode} before the cluster was ready`);
        if (Date.now() > deadline) throw new Error(`only ${nodes.length} of ${count} agents registered in time`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      client.close();
    }
  }

  /** SIGTERM everything (agents first, so they drain), then wait; SIGKILL after the grace. */
  async stop(graceMs = 15_000): Promise<void> {
    this.stopping = true;
    const agents = this.processes.filter((p) => p.name !== "scheduler");
    const schedulers = this.processes.filter((p) => p.name === "scheduler");
    for (const group of [agents, schedulers]) {
      for (const p of group) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGTERM");
      await Promise.all(
        group.map((p) =>
          Promise.race([
            p.exited,
            new Promise((r) => setTimeout(r, graceMs).unref()).then(() => {
              p.child.kill("SIGKILL");
              return p.exited;
            }),
          ]),
        ),
      );
    }
    for (const f of this.logFiles) f.end();
    this.unregister();
    for (const a of this.remembered) forgetClusterToken(a);
    if (this.ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** Reads the scheduler's JSON log lines until it reports its address. */
export function waitForListening(proc: ClusterProcess, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${proc.name} did not start listening within ${timeoutMs} ms`)), timeoutMs);
    const lines = createInterface({ input: proc.child.stdout! });
    lines.on("line", (line) => {
      try {
        const entry = JSON.parse(line) as { event?: string; address?: string };
        if (entry.event === "listening" && entry.address) {
          clearTimeout(timer);
          lines.close();
          // Closing a readline pauses its input; keep the log pipe (and other line readers) flowing.
          proc.child.stdout!.resume();
          resolve(entry.address);
        }
      } catch {
        // not a log line
      }
    });
    proc.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${proc.name} exited with code ${code} before listening`));
    });
  });
}
