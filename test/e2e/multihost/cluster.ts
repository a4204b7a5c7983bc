// A DistributeX cluster spread over the hosts of a Topology: Redis, a KRaft broker
// (scripts/kafka.sh), the scheduler (--bus kafka --state redis, TLS, tokens, a join token) and each
// agent, every one in its own network namespace, listening on and advertising only its own address.
// The test process is a client on the bridge's address; it reads the cluster's CA and admin token
// from the data dir the scheduler writes (this machine's disk is shared, its network is not).
import { mkdirSync, createWriteStream, readFileSync, existsSync, mkdtempSync, rmSync, type WriteStream } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import type { ChildProcess } from "node:child_process";
import { DistributeXClient } from "../../../client/index.js";
import { cliEntry, DAEMON_NODE_FLAGS } from "../../../cli/local-cluster.js";
import { repoRoot } from "../../../common/paths.js";
import type { Node } from "../../../common/types.js";
import { Topology } from "./topology.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const REDIS_PORT = 6379;
export const KAFKA_PORT = 9092;
export const SCHEDULER_PORT = 7070;

export interface Timing {
  heartbeatIntervalMs: number;
  agentTimeoutMs: number;
  leaseTtlMs: number;
}

export interface Daemon {
  name: string;
  host: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  /** Every JSON log line it wrote, parsed (for asserting what it said). */
  events: Record<string, unknown>[];
}

export class MultiHostCluster {
  readonly dataDir = mkdtempSync(path.join(os.tmpdir(), "distx-multihost-"));
  readonly logDir: string;
  readonly daemons = new Map<string, Daemon>();
  readonly prefix = `mh${Date.now().toString(36)}`;
  private readonly logs: WriteStream[] = [];
  private clients: DistributeXClient[] = [];
  private agentSeq = 0;

  private constructor(
    readonly net: Topology,
    readonly timing: Timing,
    private readonly agentEnv: NodeJS.ProcessEnv,
  ) {
    this.logDir = path.join(repoRoot(), "test-output", "logs", `multihost-${Date.now()}`);
    mkdirSync(this.logDir, { recursive: true });
  }

  get schedulerAddress(): string {
    return `${this.net.host("scheduler").ip}:${SCHEDULER_PORT}`;
  }
  get brokerAddress(): string {
    return `${this.net.host("broker").ip}:${KAFKA_PORT}`;
  }
  get redisUrl(): string {
    return `redis://${this.net.host("redis").ip}:${REDIS_PORT}`;
  }

  /** The topology with hosts redis, broker and scheduler, each running its process. No agents yet. */
  static async start(timing: Timing, options: { agentEnv?: NodeJS.ProcessEnv } = {}): Promise<MultiHostCluster> {
    const net = await Topology.create();
    const c = new MultiHostCluster(net, timing, options.agentEnv ?? {});
    try {
      await Promise.all([net.addHost("redis"), net.addHost("broker"), net.addHost("scheduler")]);
      await Promise.all([c.startRedis(), c.startBroker()]);
      await c.startScheduler();
    } catch (err) {
      await c.stop();
      throw err;
    }
    return c;
  }

  private spawnDaemon(name: string, host: string, command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Daemon {
    const child = this.net.spawn(host, command, args, { env });
    const log = createWriteStream(path.join(this.logDir, `${name}.log`), { flags: "a" });
    this.logs.push(log);
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    const events: Record<string, unknown>[] = [];
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (!line.startsWith("{")) return;
      try {
        events.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code, signal) => resolve(code ?? (signal ? 128 : null))));
    const d: Daemon = { name, host, child, exited, events };
    this.daemons.set(name, d);
    return d;
  }

  private async startRedis(): Promise<void> {
    const dir = path.join(this.dataDir, "redis");
    mkdirSync(dir, { recursive: true });
    this.spawnDaemon("redis", "redis", "redis-server", ["--bind", this.net.host("redis").ip, "--port", String(REDIS_PORT), "--dir", dir, "--save", "", "--appendonly", "no", "--protected-mode", "no"]);
    await until("redis answers on its address", async () => (await this.net.exec("scheduler", "redis-cli", ["-h", this.net.host("redis").ip, "-p", String(REDIS_PORT), "ping"], { timeoutMs: 3000 })).includes("PONG"), 30_000);
  }

  private async startBroker(): Promise<void> {
    const env = {
      ...process.env,
      KAFKA_HOST: this.net.host("broker").ip,
      KAFKA_PORT: String(KAFKA_PORT),
      KAFKA_CONTROLLER_PORT: String(KAFKA_PORT + 1),
      KAFKA_RUN_DIR: path.join(this.dataDir, "kafka"),
      KAFKA_HEAP_OPTS: "-Xmx384m -Xms128m",
      KAFKA_PARTITIONS: "4",
    };
    // kafka.sh setsid's the JVM inside the broker's namespace and returns once it answers there.
    await this.net.exec("broker", "bash", [path.join(repoRoot(), "scripts", "kafka.sh"), "up"], { env, timeoutMs: 240_000 });
  }

  private async startScheduler(): Promise<void> {
    const t = this.timing;
    const args = [
      ...DAEMON_NODE_FLAGS, cliEntry(), "scheduler",
      "--host", this.net.host("scheduler").ip, "--port", String(SCHEDULER_PORT),
      "--bus", "kafka", "--state", "redis",
      "--kafka-brokers", this.brokerAddress, "--kafka-topic-prefix", this.prefix,
      "--redis-url", this.redisUrl, "--redis-prefix", this.prefix,
      "--heartbeat-interval-ms", String(t.heartbeatIntervalMs),
      "--agent-timeout-ms", String(t.agentTimeoutMs),
      "--lease-ttl-ms", String(t.leaseTtlMs),
      "--drain-grace-ms", "0",
      "--data-dir", this.dataDir,
      "--bootstrap-join-token-file", path.join(this.dataDir, "local-join.token"),
    ];
    const d = this.spawnDaemon("scheduler", "scheduler", process.execPath, args);
    await until("the scheduler listens on its address", async () => {
      if (d.child.exitCode !== null) throw new Error(`the scheduler exited with code ${d.child.exitCode}; see ${this.logDir}/scheduler.log`);
      return d.events.some((e) => e.event === "listening");
    }, 120_000);
  }

  /** A client on the bridge's address, with the cluster's CA and admin token. */
  client(options: { retry?: false; timeoutMs?: number } = {}): DistributeXClient {
    const c = new DistributeXClient(this.schedulerAddress, {
      ca: readFileSync(path.join(this.dataDir, "pki", "ca.crt")),
      token: readFileSync(path.join(this.dataDir, "admin.token"), "utf8").trim(),
      timeoutMs: 10_000,
      ...options,
    });
    this.clients.push(c);
    return c;
  }

  /**
   * An agent on host `host` (made here if new), named `name` (default: the host's name), with its
   * own data dir (its own identity, as on its own machine); it joins with the local join token.
   */
  async startAgent(host: string, options: { name?: string; workers?: number; labels?: string } = {}): Promise<Daemon> {
    if (!this.net.hosts.has(host)) await this.net.addHost(host);
    const name = options.name ?? host;
    const seq = this.agentSeq++;
    const args = [
      ...DAEMON_NODE_FLAGS, cliEntry(), "agent",
      "--scheduler", this.schedulerAddress,
      "--name", name,
      "--no-calibrate",
      "--workers", String(options.workers ?? 1),
      "--labels", options.labels ?? `host=${host}`,
      "--data-dir", path.join(this.dataDir, "agents", `${host}-${seq}`),
      "--join-token-file", path.join(this.dataDir, "local-join.token"),
      "--ca", path.join(this.dataDir, "pki", "ca.crt"),
    ];
    return this.spawnDaemon(`agent-${host}-${seq}`, host, process.execPath, args, { ...process.env, ...this.agentEnv });
  }

  /** The node id an agent process registered as (from its `registered` log line). */
  async nodeIdOf(d: Daemon, timeoutMs = 90_000): Promise<string> {
    let id = "";
    await until(`${d.name} registers`, async () => {
      if (d.child.exitCode !== null) throw new Error(`${d.name} exited with code ${d.child.exitCode}; see ${this.logDir}/${d.name}.log`);
      const e = [...d.events].reverse().find((x) => x.event === "registered");
      id = typeof e?.nodeId === "string" ? e.nodeId : "";
      return id !== "";
    }, timeoutMs);
    return id;
  }

  async nodes(): Promise<Node[]> {
    const c = this.client({ retry: false, timeoutMs: 5000 });
    try {
      return await c.listNodes(true);
    } finally {
      c.close();
      this.clients = this.clients.filter((x) => x !== c);
    }
  }

  async nodeState(nodeId: string): Promise<string | undefined> {
    return (await this.nodes()).find((n) => n.nodeId === nodeId)?.state;
  }

  /** Waits until node `nodeId` is in `state`; returns when it was first seen there. */
  async waitForNodeState(nodeId: string, state: "NODE_STATE_READY" | "NODE_STATE_DOWN", timeoutMs: number): Promise<number> {
    await until(`node ${nodeId} ${state}`, async () => (await this.nodeState(nodeId)) === state, timeoutMs, 200);
    return Date.now();
  }

  /** Stops every process (SIGTERM, then SIGKILL) and removes the whole topology. Never throws. */
  async stop(): Promise<void> {
    for (const c of this.clients) c.close();
    // Agents first (they drain), then the scheduler, then what it uses; destroy() sweeps the rest.
    const agents = [...this.net.hosts.keys()].filter((h) => !["scheduler", "redis", "broker"].includes(h));
    await Promise.all(agents.map((h) => this.net.removeHost(h, 3000).catch(() => undefined)));
    await this.net.removeHost("scheduler", 5000).catch(() => undefined);
    await this.net.destroy(3000).catch(() => undefined);
    for (const l of this.logs) l.end();
    if (existsSync(this.dataDir)) rmSync(this.dataDir, { recursive: true, force: true });
  }
}

export async function until(what: string, fn: () => Promise<boolean>, timeoutMs: number, everyMs = 250): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await fn()) return;
    } catch (err) {
      last = err;
      if ((err as Error).message.includes("exited with code")) throw err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ""}`);
    await sleep(everyMs);
  }
}
