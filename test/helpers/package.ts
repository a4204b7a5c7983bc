// The npm package as users get it, for the e2e tests that install it outside the repo
// (test/e2e/package-install.test.ts, test/e2e/kernel-sdk.test.ts): pack, install, run `distx up`.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { repoRoot } from "../../common/paths.js";

/** Runs a command to completion; throws with its output when it fails. */
export function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): string {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", env: { ...process.env, ...env }, timeout: 300_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} (in ${cwd}) exited ${r.status ?? r.signal}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

// Dependencies come from npm's cache when CI's `npm ci` filled it, else from the registry.
// Install scripts are skipped: the only one that matters is gl's (headless GL, optional).
export const NPM_INSTALL = ["install", "--ignore-scripts", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel", "error"];

/** `npm pack` of this tree into `dest`: the tarball's path and the files it holds. */
export function packTarball(dest: string): { tarball: string; files: Set<string> } {
  const out = JSON.parse(sh("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dest], repoRoot())) as { filename: string; files: { path: string }[] }[];
  return { tarball: path.join(dest, out[0]!.filename), files: new Set(out[0]!.files.map((f) => f.path)) };
}

/** `distx up` (one agent, one worker) from an installed `distx`, resolved once it serves and wrote its client profile. */
export async function startInstalledCluster(distx: string, cwd: string, home: string, port: number): Promise<ChildProcess> {
  const cluster = spawn(distx, ["up", "--agents", "1", "--workers", "1", "--port", String(port)], { cwd, env: { ...process.env, DISTX_HOME: home }, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  cluster.stdout!.on("data", (d: Buffer) => (log += d.toString()));
  cluster.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`distx up did not come up in 90 s:\n${log}`)), 90_000);
    const check = setInterval(() => {
      if (/scheduler at /.test(log) && existsSync(path.join(home, "client.json"))) {
        clearTimeout(timer);
        clearInterval(check);
        resolve();
      } else if (cluster.exitCode !== null) {
        clearTimeout(timer);
        clearInterval(check);
        reject(new Error(`distx up exited ${cluster.exitCode}:\n${log}`));
      }
    }, 100);
  });
  return cluster;
}

/** Stops a cluster started above and waits for it to exit. */
export async function stopCluster(cluster: ChildProcess | undefined): Promise<void> {
  if (cluster && cluster.exitCode === null) {
    cluster.kill("SIGTERM");
    await new Promise((r) => cluster.once("exit", r));
  }
}
