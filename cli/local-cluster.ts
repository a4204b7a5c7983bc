// Starts a scheduler and agents as separate OS processes on this machine, the way an
// operator would, and waits until every agent is registered. Used by `distx up`, `distx demo`
// and the end-to-end tests.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, type WriteStream } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { DistributeXClient } from "../client/index.js";
import { forgetClusterToken, rememberClusterToken } from "../client/credentials.js";
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
  /**
   * The cluster's data dir (tokens.json, admin.token, client.json). Default: a fresh temporary
   * dir, removed on stop; `distx up` passes the user's ($DISTX_HOME or ~/.distx) so that later
   * CLI commands find the admin token there.
   */
  dataDir?: string;
  /** Write <dataDir>/client.json (scheduler address and token file) once the scheduler listens. */
  writeClientProfile?: boolean;
  /** Run the scheduler with --insecure (no authentication). */
  insecure?: boolean;
}

export interface ClusterProcess {
  name: string;
  child: ChildProcess;
  exited: Promise<number | null>;
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
  /** Where tokens.json and admin.token live; the processes get it as DISTX_DATA_DIR. */
  readonly dataDir: string;
  private readonly ownsDataDir: boolean;
  private readonly remembered = new Set<string>();

  constructor(private readonly options: LocalClusterOptions) {
    this.ownsDataDir = options.dataDir === undefined;
    this.dataDir = options.dataDir ?? mkdtempSync(path.join(os.tmpdir(), "distx-cluster-"));
  }

  /** The bootstrap admin token's file (written by the scheduler at its first start). */
  get adminTokenFile(): string {
    return path.join(this.dataDir, "admin.token");
  }

  /** The admin token, once the scheduler has started. */
  get adminToken(): string {
    return readFileSync(this.adminTokenFile, "utf8").trim();
  }

  /** The folder holding one log file per process, when logs go to files. */
  get logDir(): string | undefined {
    return this.options.logs === "inherit" ? undefined : this.options.logs;
  }

  spawnProcess(name: string, args: string[]): ClusterProcess {
    const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, ...(this.options.nodeArgs ?? []), cliEntry(), ...args], {
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
    createInterface({ input: child.stdout! }).on("line", (line) => {
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
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 : null))));
    const proc = { name, child, exited };
    this.processes.push(proc);
    return proc;
  }

  async start(): Promise<string> {
    const adminArgs = this.options.adminPorts === false ? [] : ["--admin-port", "0"];
    const insecureArgs = this.options.insecure ? ["--insecure"] : [];
    const scheduler = this.spawnProcess("scheduler", ["scheduler", "--port", String(this.options.port ?? 0), ...adminArgs, ...insecureArgs, ...(this.options.schedulerArgs ?? [])]);
    this.address = await waitForListening(scheduler, this.options.readyTimeoutMs ?? 30_000);
    rememberClusterToken(this.address, this.adminTokenFile);
    this.remembered.add(this.address);
    if (this.options.writeClientProfile) this.writeClientProfile();
    for (let i = 0; i < this.options.agents; i++) this.startAgent(i);
    await this.waitForNodes(this.options.agents);
    return this.address;
  }

  /** <dataDir>/client.json: where `distx` commands find the scheduler and the token (other keys, e.g. caFile, are kept). */
  private writeClientProfile(): void {
    const file = path.join(this.dataDir, "client.json");
    let profile: Record<string, unknown> = {};
    try {
      profile = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    } catch {
      // none yet
    }
    writeFileSync(file, JSON.stringify({ ...profile, scheduler: this.address, tokenFile: this.adminTokenFile }, null, 2) + "\n", { mode: 0o600 });
  }

  startAgent(index: number, extraArgs: string[] = []): ClusterProcess {
    const adminArgs = this.options.adminPorts === false ? [] : ["--admin-port", "0"];
    const args = ["agent", "--scheduler", this.address, "--name", `agent-${index}`, ...adminArgs, ...(this.options.agentArgs?.(index) ?? []), ...extraArgs];
    if (this.options.workersPerAgent) args.push("--workers", String(this.options.workersPerAgent));
    return this.spawnProcess(`agent-${index}`, args);
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
