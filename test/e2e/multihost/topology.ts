// A real multi-host network on one machine, for the multi-host suite (test/e2e/multihost/): a bridge in
// the root network namespace and one network namespace per host, each joined to the bridge by a
// veth pair and given its own address. Processes run inside a host with `ip netns exec`, so they
// reach each other only over that network, never over a shared loopback. The test process itself
// sits in the root namespace on the bridge's address (a "client host").
//
// Faults are real link-level ones: a link taken down, a blackhole route, a netem qdisc.
//
// Needs root (CAP_NET_ADMIN) and iproute2 (`ip`, `tc`). Names carry this process's pid, so
// parallel runs never clash; each run claims its /24 in CLAIM_DIR atomically (O_EXCL), and
// leftovers of runs whose process is gone (killed before teardown) are removed at the next start.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from "node:fs";
import { promisify } from "node:util";

const run = promisify(execFile);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Network namespaces and links of this harness: `dxmh-<owner pid>-<seq>-<host>`, bridges `dxmh<pid36>-<seq>`. */
const NETNS_PREFIX = "dxmh-";
const CLAIM_DIR = "/run/distx-multihost";
/** Every run takes one 10.77.<n>.0/24 (n in 1..254). */
const SUBNET_BASE = "10.77";

export function multihostUnavailable(): string | undefined {
  // Network namespaces, veth pairs and a bridge need root. A developer's non-root run skips with
  // this reason; CI (root, CI=true) must never skip: there a missing right fails with ip's error.
  if (process.env.CI === "true") return undefined;
  if (process.getuid?.() !== 0) return "the multi-host suite needs root (network namespaces, veth pairs, a bridge); run it as root";
  return undefined;
}

async function ip(...args: string[]): Promise<string> {
  try {
    return (await run("ip", args, { timeout: 15_000 })).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(" ")}: ${(e.stderr || e.message).trim()}`);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Kills every process inside a network namespace (SIGTERM, then SIGKILL), then deletes it. */
async function removeNetns(ns: string, graceMs: number): Promise<void> {
  const pids = async () =>
    (await ip("netns", "pids", ns).catch(() => ""))
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  for (const pid of await pids()) process.kill(pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while ((await pids()).length > 0 && Date.now() < deadline) await sleep(100);
  for (const pid of await pids()) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
  await ip("netns", "del", ns).catch(() => undefined);
}

/** Removes what runs whose owning process is gone left behind: namespaces, bridges, subnet claims. */
async function sweepLeftovers(): Promise<void> {
  const names = (await ip("netns", "list").catch(() => ""))
    .split("\n")
    .map((l) => l.split(" ")[0]!)
    .filter((n) => n.startsWith(NETNS_PREFIX));
  for (const ns of names) {
    const owner = Number(ns.split("-")[1]);
    if (owner && !alive(owner)) await removeNetns(ns, 500);
  }
  const links = (await ip("-o", "link", "show", "type", "bridge").catch(() => "")).split("\n");
  for (const line of links) {
    const m = /^\d+: (dxmh([0-9a-z]+)-[0-9a-z]+)[:@]/.exec(line);
    if (m && !alive(parseInt(m[2]!, 36))) await ip("link", "del", m[1]!).catch(() => undefined);
  }
  mkdirSync(CLAIM_DIR, { recursive: true });
  for (const f of readdirSync(CLAIM_DIR)) {
    const owner = Number(readFileSync(`${CLAIM_DIR}/${f}`, "utf8").trim());
    if (!owner || !alive(owner)) rmSync(`${CLAIM_DIR}/${f}`, { force: true });
  }
}

/** Takes a free 10.77.<n>.0/24 for this run (the claim file is created with O_EXCL). */
function claimSubnet(): number {
  mkdirSync(CLAIM_DIR, { recursive: true });
  const start = 1 + Math.floor(Math.random() * 254);
  for (let i = 0; i < 254; i++) {
    const n = 1 + ((start - 1 + i) % 254);
    try {
      const fd = openSync(`${CLAIM_DIR}/${SUBNET_BASE}.${n}`, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return n;
    } catch {
      // taken
    }
  }
  throw new Error(`no free ${SUBNET_BASE}.n.0/24 left in ${CLAIM_DIR}`);
}

export interface Host {
  name: string;
  /** Its network namespace. */
  ns: string;
  /** Its address on the bridge. */
  ip: string;
  /** The root-namespace end of its veth pair (on the bridge); the namespace end is `eth0`. */
  veth: string;
}

let topologySeq = 0;

export class Topology {
  readonly hosts = new Map<string, Host>();
  /** The root namespace's address on the bridge: where the test process (the client) sits. */
  readonly gatewayIp: string;
  private readonly bridge: string;
  private readonly tag: string;
  private nextHost = 2;
  private readonly children = new Set<ChildProcess>();
  private destroyed = false;

  private constructor(
    readonly subnet: number,
    seq: number,
  ) {
    this.tag = `${process.pid.toString(36)}-${seq.toString(36)}`;
    this.bridge = `dxmh${this.tag}`;
    this.gatewayIp = `${SUBNET_BASE}.${subnet}.1`;
  }

  static async create(): Promise<Topology> {
    const why = multihostUnavailable();
    if (why) throw new Error(why);
    await sweepLeftovers();
    const t = new Topology(claimSubnet(), topologySeq++);
    try {
      await ip("link", "add", t.bridge, "type", "bridge");
      await ip("addr", "add", `${t.gatewayIp}/24`, "dev", t.bridge);
      await ip("link", "set", t.bridge, "up");
    } catch (err) {
      await t.destroy();
      throw err;
    }
    return t;
  }

  /** A new host: its own namespace, a veth pair onto the bridge, its own address, lo up. */
  async addHost(name: string): Promise<Host> {
    if (this.hosts.has(name)) throw new Error(`host ${name} exists`);
    if (this.nextHost > 254) throw new Error("no address left in this topology's /24");
    const index = this.nextHost++;
    const host: Host = { name, ns: `${NETNS_PREFIX}${process.pid}-${this.tag.split("-")[1]}-${name}`, ip: `${SUBNET_BASE}.${this.subnet}.${index}`, veth: `dxmh${this.tag}h${index}` };
    if (host.veth.length > 15) throw new Error(`interface name ${host.veth} is over 15 characters`);
    this.hosts.set(name, host);
    await ip("netns", "add", host.ns);
    await ip("link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.ns);
    await ip("link", "set", host.veth, "master", this.bridge, "up");
    await ip("-n", host.ns, "addr", "add", `${host.ip}/24`, "dev", "eth0");
    await ip("-n", host.ns, "link", "set", "eth0", "up");
    await ip("-n", host.ns, "link", "set", "lo", "up");
    return host;
  }

  host(name: string): Host {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no host ${name}`);
    return h;
  }

  /** Starts `command args` inside the host's namespace; the returned child is the command itself (ip netns exec execs it). */
  spawn(host: string, command: string, args: string[], options: { env?: NodeJS.ProcessEnv; stdio?: "pipe" | "ignore"; detached?: boolean } = {}): ChildProcess {
    const child = spawn("ip", ["netns", "exec", this.host(host).ns, command, ...args], { env: options.env ?? process.env, stdio: ["ignore", options.stdio ?? "pipe", options.stdio ?? "pipe"], detached: options.detached });
    this.children.add(child);
    child.once("exit", () => this.children.delete(child));
    return child;
  }

  /** Runs a command inside the host's namespace to its end. */
  async exec(host: string, command: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<string> {
    try {
      return (await run("ip", ["netns", "exec", this.host(host).ns, command, ...args], { env: options.env ?? process.env, timeout: options.timeoutMs ?? 30_000 })).stdout;
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string };
      throw new Error(`${host}: ${command} ${args.join(" ")}: ${(e.stderr || e.stdout || e.message).trim().slice(-2000)}`);
    }
  }

  // ── faults ──

  /** Takes the host's link down (the bridge end of its veth): every packet to or from it is lost. */
  async linkDown(host: string): Promise<void> {
    await ip("link", "set", this.host(host).veth, "down");
  }

  async linkUp(host: string): Promise<void> {
    await ip("link", "set", this.host(host).veth, "up");
  }

  /** Inside `host`, routes `target`'s address into a blackhole: `host` can no longer reach it (and gets no answer from it). */
  async blackhole(host: string, target: string): Promise<void> {
    await ip("-n", this.host(host).ns, "route", "add", "blackhole", `${this.host(target).ip}/32`);
  }

  async unblackhole(host: string, target: string): Promise<void> {
    await ip("-n", this.host(host).ns, "route", "del", "blackhole", `${this.host(target).ip}/32`);
  }

  /**
   * A slow link on both ends of the host's veth (so both directions get it): `delayMs` of latency
   * and `rate` (tc's syntax, e.g. "5mbit"). With netem (CONFIG_NET_SCH_NETEM) both; a kernel
   * without it (some VM kernels ship only tbf and htb) gets the rate alone through tbf, and the
   * result says so.
   */
  async shape(host: string, link: { delayMs: number; rate: string }): Promise<{ delay: boolean; qdisc: "netem" | "tbf" }> {
    const h = this.host(host);
    const both = async (qdisc: string[]) => {
      await run("tc", ["qdisc", "replace", "dev", h.veth, "root", ...qdisc], { timeout: 15_000 });
      await run("ip", ["netns", "exec", h.ns, "tc", "qdisc", "replace", "dev", "eth0", "root", ...qdisc], { timeout: 15_000 });
    };
    try {
      await both(["netem", "delay", `${link.delayMs}ms`, "rate", link.rate]);
      return { delay: true, qdisc: "netem" };
    } catch (err) {
      if (!/qdisc kind is unknown/.test((err as { stderr?: string }).stderr ?? "")) throw err;
    }
    await both(["tbf", "rate", link.rate, "burst", "32kbit", "latency", "400ms"]);
    return { delay: false, qdisc: "tbf" };
  }

  async unshape(host: string): Promise<void> {
    const h = this.host(host);
    await run("tc", ["qdisc", "del", "dev", h.veth, "root"], { timeout: 15_000 }).catch(() => undefined);
    await run("ip", ["netns", "exec", h.ns, "tc", "qdisc", "del", "dev", "eth0", "root"], { timeout: 15_000 }).catch(() => undefined);
  }

  /** Kills every process in `host` and removes the host (its namespace and veth pair). */
  async removeHost(name: string, graceMs = 3000): Promise<void> {
    const h = this.hosts.get(name);
    if (!h) return;
    await removeNetns(h.ns, graceMs);
    await ip("link", "del", h.veth).catch(() => undefined); // goes with the namespace; this is for a half-made host
    this.hosts.delete(name);
  }

  /**
   * Tears everything down: every process in every host (SIGTERM, then SIGKILL after `graceMs`),
   * every namespace, the bridge, the subnet claim. Idempotent; never throws.
   */
  async destroy(graceMs = 3000): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await Promise.all([...this.hosts.keys()].map((h) => this.removeHost(h, graceMs).catch(() => undefined)));
    for (const c of this.children) c.kill("SIGKILL");
    await ip("link", "del", this.bridge).catch(() => undefined);
    rmSync(`${CLAIM_DIR}/${SUBNET_BASE}.${this.subnet}`, { force: true });
  }
}
