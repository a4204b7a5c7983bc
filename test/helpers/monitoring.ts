// Shared helpers for the monitoring tests: binaries from Debian packages, a real Prometheus
// and Alertmanager on free loopback ports, PromQL over its HTTP API, headless Chromium.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium, type Browser } from "playwright-core";
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

/**
 * Runs a Prometheus-family daemon (prometheus, prometheus-alertmanager: same flags style, same
 * /-/ready) on a free loopback port with its files in a temp dir, and waits until it is ready. A
 * daemon that exits before it is ready (another process took the port between freePort and its
 * bind) is started again on a new port, up to three times.
 */
async function startPromDaemon(name: string, bin: string, files: Record<string, string>, args: (dir: string, listen: string) => string[]): Promise<RunningPrometheus> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `distx-${name}-`));
  for (const [file, body] of Object.entries(files)) writeFileSync(path.join(dir, file), body);
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const logs: string[] = [];
    const child = spawn(bin, args(dir, `127.0.0.1:${port}`), { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.on("data", (d: Buffer) => logs.push(d.toString()));
    child.stderr!.on("data", (d: Buffer) => logs.push(d.toString()));
    const exited = new Promise<void>((r) => child.on("exit", () => r()));
    const deadline = Date.now() + 30_000;
    let ready = false;
    while (child.exitCode === null) {
      if (await fetch(`${url}/-/ready`).then((r) => r.ok, () => false)) {
        ready = true;
        break;
      }
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        throw new Error(`${name} not ready in 30 s: ${logs.join("").slice(-2000)}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    if (!ready) {
      if (attempt < 3 && /address already in use/i.test(logs.join(""))) continue;
      throw new Error(`${name} exited with ${child.exitCode}: ${logs.join("").slice(-2000)}`);
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
}

/** Starts the Debian prometheus binary with `configYaml`, on a free loopback port, storage in a temp dir. */
export async function startPrometheus(configYaml: string, extraFiles: Record<string, string> = {}): Promise<RunningPrometheus> {
  return startPromDaemon("prometheus", requireBinary("prometheus", "prometheus"), { "prometheus.yml": configYaml, ...extraFiles }, (dir, listen) => [
    `--config.file=${path.join(dir, "prometheus.yml")}`,
    `--storage.tsdb.path=${path.join(dir, "data")}`,
    `--web.listen-address=${listen}`,
    "--log.level=warn",
  ]);
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
  return startPromDaemon("alertmanager", requireBinary("prometheus-alertmanager", "prometheus-alertmanager"), { "alertmanager.yml": configYaml }, (dir, listen) => [
    `--config.file=${path.join(dir, "alertmanager.yml")}`,
    `--storage.path=${path.join(dir, "data")}`,
    `--web.listen-address=${listen}`,
    "--cluster.listen-address=",
    "--log.level=warn",
  ]);
}

/** Debian's Chromium, headless, for the dashboard tests (driven by playwright-core). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: requireBinary("chromium", "chromium"),
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
}
