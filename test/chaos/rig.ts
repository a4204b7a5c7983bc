// The chaos cluster: real processes on loopback that the nemesis may kill, pause and break.
// Two schedulers (one active, one standby on the Redis lease) with --queue kafka --state redis,
// N agents (LocalCluster spawns all of them), a private KRaft broker (scripts/kafka.sh on free
// ports) and a private redis-server started here, so neither is shared with other tests.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import kafkajs from "kafkajs";
import { DistributeXClient } from "../../client/index.js";
import { LocalCluster, waitForListening, type ClusterProcess } from "../../cli/local-cluster.js";
import { topicNames } from "../../common/kafka-wire.js";
import { RedisStateStore } from "../../scheduler/backends/redis-state.js";
import { repoRoot } from "../../common/paths.js";
import { freePort } from "../helpers/net.js";
import type { HistoryInput } from "./history.js";

const { Kafka, logLevel, ConfigResourceTypes } = kafkajs; // CommonJS: not every export is a named ESM export
const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface RigOptions {
  dir: string;
  agents: number;
  heartbeatIntervalMs: number;
  agentTimeoutMs: number;
  leaseTtlMs: number;
  /** The task-events topic's max.message.bytes: a broker stricter than scripts/kafka.sh's 64 MiB. */
  eventsMaxMessageBytes: number;
  record: (e: HistoryInput) => void;
}

/**
 * The one place the harness makes a client. When LocalCluster hands clients their credentials
 * (TLS + tokens), take the client from it here so every chaos client carries them.
 */
export function connect(_cluster: LocalCluster, address: string, options: { retry?: false } = {}): DistributeXClient {
  return new DistributeXClient(address, { timeoutMs: 5000, ...options });
}

export type ProcName = string; // "scheduler-0", "agent-1", "redis", "broker"

export class ChaosRig {
  readonly cluster: LocalCluster;
  readonly prefix = `chaos${Date.now().toString(36)}`;
  schedulerPorts: number[] = [];
  redisPort = 0;
  kafkaPort = 0;
  kafkaControllerPort = 0;
  private redisChild: ChildProcess | undefined;
  private readonly procs = new Map<ProcName, { pid: number; child?: ChildProcess }>();
  /** pids the harness itself killed or stopped: their exit is expected. */
  private readonly expectedExit = new Set<number>();
  private stopping = false;
  private storeConnection?: Promise<RedisStateStore>;
  readonly agentNames: string[];
  readonly schedulerNames = ["scheduler-0", "scheduler-1"];
  /** The schedulers' retainFinishedJobs (their default): older finished jobs are read from the store. */
  readonly retainFinishedJobs = Number(process.env.DISTX_CHAOS_RETAIN_FINISHED_JOBS) || 1000;

  constructor(readonly options: RigOptions) {
    this.agentNames = Array.from({ length: options.agents }, (_, i) => `agent-${i}`);
    this.cluster = new LocalCluster({
      agents: 0,
      workersPerAgent: 1,
      logs: path.join(options.dir, "logs"),
      // The label ties a node in ListNodes to its agent process across re-registrations.
      agentArgs: (i) => ["--no-calibrate", "--labels", `chaos=agent-${i}`],
      env: { DISTX_RETAIN_FINISHED_JOBS: String(this.retainFinishedJobs) },
    });
  }

  get redisUrl(): string {
    return `redis://127.0.0.1:${this.redisPort}`;
  }
  get brokers(): string {
    return `127.0.0.1:${this.kafkaPort}`;
  }
  get addresses(): string[] {
    return this.schedulerPorts.map((p) => `127.0.0.1:${p}`);
  }
  get eventsTopic(): string {
    return topicNames(this.prefix).events;
  }
  pid(name: ProcName): number | undefined {
    return this.procs.get(name)?.pid;
  }

  async start(): Promise<void> {
    mkdirSync(this.options.dir, { recursive: true });
    [this.redisPort, this.kafkaPort] = await Promise.all([freePort(), freePort()]);
    this.kafkaControllerPort = await freePort();
    this.schedulerPorts = await Promise.all([freePort(), freePort()]);
    await this.startRedis();
    await this.startBroker();
    const first = this.startScheduler(0);
    await waitForListening(first, 60_000);
    this.startScheduler(1);
    this.cluster.address = this.addresses.join(",");
    for (let i = 0; i < this.options.agents; i++) this.startAgent(i);
    await this.until("all agents ready", async () => {
      const c = await this.activeClient();
      if (!c) return false;
      try {
        return (await c.listNodes()).filter((n) => n.state === "NODE_STATE_READY").length >= this.options.agents;
      } finally {
        c.close();
      }
    }, 90_000);
    await this.setEventsMaxMessageBytes(this.options.eventsMaxMessageBytes);
  }

  // ── processes ──

  private track(name: ProcName, pid: number, child?: ChildProcess): void {
    this.procs.set(name, { pid, child });
    this.options.record({ type: "proc", name, event: "started", pid });
    child?.on("exit", (code, signal) => {
      const expected = this.stopping || this.expectedExit.has(pid) || (name.startsWith("scheduler") && code === 3);
      this.options.record({ type: "proc", name, event: "exited", pid, code, signal, expected });
      // A supervisor restarts what died on its own (an agent that gave up, a scheduler that lost
      // its lease and exited on purpose); what the nemesis killed, the nemesis restarts.
      if (!this.stopping && !this.expectedExit.has(pid)) void sleep(1000).then(() => (this.stopping ? undefined : this.restart(name)));
    });
  }

  private startScheduler(i: number): ClusterProcess {
    const o = this.options;
    const args = [
      "scheduler", "--port", String(this.schedulerPorts[i]),
      "--bus", "kafka", "--state", "redis",
      "--kafka-brokers", this.brokers, "--kafka-topic-prefix", this.prefix,
      "--redis-url", this.redisUrl, "--redis-prefix", this.prefix,
      "--lease-ttl-ms", String(o.leaseTtlMs),
      "--heartbeat-interval-ms", String(o.heartbeatIntervalMs),
      "--agent-timeout-ms", String(o.agentTimeoutMs),
      "--drain-grace-ms", "0",
    ];
    const p = this.cluster.spawnProcess(`scheduler-${i}`, args);
    this.track(`scheduler-${i}`, p.child.pid!, p.child);
    return p;
  }

  private startAgent(i: number): ClusterProcess {
    // Default --connect-timeout-ms on purpose: an agent that gives up is a finding (no-unexpected-exit).
    const p = this.cluster.startAgent(i);
    this.track(`agent-${i}`, p.child.pid!, p.child);
    return p;
  }

  private async startRedis(): Promise<void> {
    const dir = path.join(this.options.dir, "redis");
    mkdirSync(dir, { recursive: true });
    const log = openSync(path.join(this.options.dir, "logs-redis.log"), "a");
    // Every write fsynced, so a kill -9 of Redis loses nothing the scheduler was told is stored.
    const child = spawn("redis-server", ["--port", String(this.redisPort), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--appendfsync", "always", "--save", ""], {
      stdio: ["ignore", log, log],
    });
    this.redisChild = child;
    this.track("redis", child.pid!, child);
    await this.until("redis", async () => (await this.redisCli("ping").catch(() => "")).includes("PONG"), 20_000, 50);
  }

  private kafkaEnv(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      KAFKA_PORT: String(this.kafkaPort),
      KAFKA_CONTROLLER_PORT: String(this.kafkaControllerPort),
      KAFKA_HEAP_OPTS: "-Xmx384m -Xms128m",
      KAFKA_PARTITIONS: "4",
    };
  }

  private brokerPidFile(): string {
    return path.join(repoRoot(), ".cache", "kafka", `run-${this.kafkaPort}`, "kafka.pid");
  }

  private async startBroker(): Promise<void> {
    await run("bash", [path.join(repoRoot(), "scripts/kafka.sh"), "up"], { env: this.kafkaEnv(), timeout: 180_000 });
    const pid = Number(readFileSync(this.brokerPidFile(), "utf8").trim());
    this.track("broker", pid);
  }

  /** The broker is not our child (kafka.sh setsid's it): the monitor calls this to notice its death. */
  checkBroker(): void {
    const pid = this.pid("broker");
    if (!pid || this.stopping || this.expectedExit.has(pid)) return;
    try {
      process.kill(pid, 0);
    } catch {
      this.options.record({ type: "proc", name: "broker", event: "exited", pid, code: null, expected: false });
      this.expectedExit.add(pid);
      void this.restart("broker");
    }
  }

  /** kill -9 (the harness expects this exit). */
  kill(name: ProcName): void {
    const pid = this.pid(name);
    if (!pid) return;
    this.expectedExit.add(pid);
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
    if (name === "broker") this.options.record({ type: "proc", name, event: "exited", pid, code: null, signal: "SIGKILL", expected: true });
  }

  signal(name: ProcName, sig: "SIGSTOP" | "SIGCONT"): void {
    const pid = this.pid(name);
    if (!pid) return;
    try {
      process.kill(pid, sig);
    } catch {
      // gone
    }
  }

  /** Starts `name` again after a kill (waits for its exit first). */
  async restart(name: ProcName): Promise<void> {
    const old = this.procs.get(name);
    if (old?.child && old.child.exitCode === null && old.child.signalCode === null) {
      await new Promise((r) => old.child!.once("exit", r));
    }
    if (this.stopping) return;
    if (name === "redis") await this.startRedis();
    else if (name === "broker") {
      if (old) await this.until("old broker gone", async () => !alive(old.pid), 10_000, 100).catch(() => undefined);
      await this.startBroker();
    } else if (name.startsWith("scheduler-")) this.startScheduler(Number(name.slice("scheduler-".length)));
    else if (name.startsWith("agent-")) this.startAgent(Number(name.slice("agent-".length)));
  }

  /** The scheduler that is listening (the lease holder), by name. */
  async activeScheduler(): Promise<string | undefined> {
    for (let i = 0; i < this.schedulerPorts.length; i++) {
      if (await portOpen(this.schedulerPorts[i]!)) return `scheduler-${i}`;
    }
    return undefined;
  }

  /**
   * A client of whichever scheduler answers, or undefined. It does not retry by itself: the
   * monitor and the final reads must notice at once that its scheduler is gone and look for the
   * active one (a retrying client kept the monitor blind for a minute after a failover).
   */
  async activeClient(): Promise<DistributeXClient | undefined> {
    for (const address of this.addresses) {
      const c = connect(this.cluster, address, { retry: false });
      try {
        await c.waitForReady(500);
        return c;
      } catch {
        c.close();
      }
    }
    return undefined;
  }

  // ── backends ──

  redisCli(...args: string[]): Promise<string> {
    return run("redis-cli", ["-p", String(this.redisPort), ...args], { timeout: 5000 }).then((r) => r.stdout);
  }

  async setEventsMaxMessageBytes(bytes: number): Promise<void> {
    const kafka = new Kafka({ clientId: "chaos-nemesis", brokers: [this.brokers], logLevel: logLevel.NOTHING, retry: { retries: 3 }, connectionTimeout: 3000, requestTimeout: 5000 });
    const admin = kafka.admin();
    try {
      await admin.connect();
      await admin.alterConfigs({
        validateOnly: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: this.eventsTopic, configEntries: [{ name: "max.message.bytes", value: String(bytes) }] }],
      });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /** Redis records one hash of results per job. */
  async storedResults(jobId: string): Promise<number | undefined> {
    const store = await this.store();
    return store.redis.hlen(`${this.prefix}:job:${jobId}:results`).catch(() => undefined);
  }

  /**
   * The schedulers' own store, read with the product's code: for jobs that finished so long ago
   * that no scheduler retains them (retainFinishedJobs), the final read goes to the store.
   */
  store(): Promise<RedisStateStore> {
    this.storeConnection ??= RedisStateStore.connect({ url: this.redisUrl, prefix: this.prefix, connectTimeoutMs: 5000 });
    return this.storeConnection;
  }

  async until(what: string, fn: () => Promise<boolean>, timeoutMs: number, everyMs = 200): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await fn().catch(() => false)) return;
      if (Date.now() > deadline) throw new Error(`chaos rig: timed out waiting for ${what}`);
      await sleep(everyMs);
    }
  }

  /** Resumes anything paused, then stops everything and removes the private broker's data. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const [, p] of this.procs) {
      try {
        process.kill(p.pid, "SIGCONT");
      } catch {
        // gone
      }
    }
    await this.cluster.stop(3000);
    const store = await this.storeConnection?.catch(() => undefined);
    await store?.close().catch(() => undefined);
    this.redisChild?.kill("SIGKILL");
    await run("bash", [path.join(repoRoot(), "scripts/kafka.sh"), "wipe"], { env: this.kafkaEnv(), timeout: 60_000 }).catch(() => undefined);
    if (existsSync(this.brokerPidFile())) {
      const pid = Number(readFileSync(this.brokerPidFile(), "utf8"));
      if (alive(pid)) process.kill(pid, "SIGKILL");
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: "127.0.0.1" });
    s.setTimeout(300);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
    s.once("timeout", () => {
      s.destroy();
      resolve(false);
    });
  });
}
