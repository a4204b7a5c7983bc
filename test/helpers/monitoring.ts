// Shared helpers for the monitoring tests: binaries from Debian packages, a real Prometheus
// on a free loopback port, PromQL over its HTTP API.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { repoRoot } from "../../common/paths.js";
import { freePort } from "./net.js";
import { until } from "./poll.js";

/** The path of a required system binary, or a clear error saying how to install it. */
export function requireBinary(name: string, pkg: string): string {
  for (const dir of ["/usr/bin", "/usr/local/bin", "/bin"]) {
    const p = path.join(dir, name);
    if (existsSync(p)) return p;
  }
  const which = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  throw new Error(`${name} is not installed (Debian package ${pkg}); run scripts/install-monitoring-deps.sh`);
}

export const deployDir = (...p: string[]) => path.join(repoRoot(), "deploy", ...p);
export const testOutputDir = (...p: string[]) => {
  const dir = path.join(repoRoot(), "test-output", "monitoring");
  mkdirSync(dir, { recursive: true });
  return path.join(dir, ...p);
};


export interface RunningPrometheus {
  url: string;
  child: ChildProcess;
  dir: string;
  stop(): Promise<void>;
}

/** Starts the Debian prometheus binary with `configYaml`, on a free loopback port, storage in a temp dir. */
export async function startPrometheus(configYaml: string, extraFiles: Record<string, string> = {}): Promise<RunningPrometheus> {
  const bin = requireBinary("prometheus", "prometheus");
  const dir = mkdtempSync(path.join(os.tmpdir(), "distx-prom-"));
  writeFileSync(path.join(dir, "prometheus.yml"), configYaml);
  for (const [name, body] of Object.entries(extraFiles)) writeFileSync(path.join(dir, name), body);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logs: string[] = [];
  const child = spawn(
    bin,
    [`--config.file=${path.join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${path.join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--log.level=warn"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stdout!.on("data", (d: Buffer) => logs.push(d.toString()));
  child.stderr!.on("data", (d: Buffer) => logs.push(d.toString()));
  const exited = new Promise<void>((r) => child.on("exit", () => r()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}: ${logs.join("").slice(-2000)}`);
    const ok = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`prometheus not ready in 30 s: ${logs.join("").slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    child,
    dir,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
    },
  };
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export async function promQuery(baseUrl: string, query: string): Promise<PromSample[]> {
  const res = await fetch(`${baseUrl}/api/v1/query?query=${encodeURIComponent(query)}`);
  const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: PromSample[] } };
  if (body.status !== "success") throw new Error(`PromQL ${query}: ${body.error}`);
  return body.data!.result;
}

/** Polls `fn` until it returns a value that is not undefined, or throws after timeoutMs with the last error. */
export async function eventually<T>(fn: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  // Through the one poll helper; a value here may be falsy (0, ""), so it travels boxed.
  const box = await until(what, async () => {
    const v = await fn();
    return v === undefined ? undefined : { v };
  }, timeoutMs, 250);
  return box.v;
}

/** Starts Debian's prometheus-alertmanager with `configYaml` on a free loopback port (no cluster peer port), state in a temp dir. */
export async function startAlertmanager(configYaml: string): Promise<RunningPrometheus> {
  const bin = requireBinary("prometheus-alertmanager", "prometheus-alertmanager");
  const dir = mkdtempSync(path.join(os.tmpdir(), "distx-am-"));
  writeFileSync(path.join(dir, "alertmanager.yml"), configYaml);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logs: string[] = [];
  const child = spawn(
    bin,
    [`--config.file=${path.join(dir, "alertmanager.yml")}`, `--storage.path=${path.join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--cluster.listen-address=", "--log.level=warn"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stdout!.on("data", (d: Buffer) => logs.push(d.toString()));
  child.stderr!.on("data", (d: Buffer) => logs.push(d.toString()));
  const exited = new Promise<void>((r) => child.on("exit", () => r()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`alertmanager exited with ${child.exitCode}: ${logs.join("").slice(-2000)}`);
    if (await fetch(`${url}/-/ready`).then((r) => r.ok, () => false)) break;
    if (Date.now() > deadline) throw new Error(`alertmanager not ready in 30 s: ${logs.join("").slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    child,
    dir,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
    },
  };
}
