// Shared pieces of the reliability tests: a private redis-server (so a test may break, pause or
// reconfigure it without touching the shared one) and small waits.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort, until } from "./services.js";

export { freePort, sleep, testServices, uniquePrefix, until, repo } from "./services.js";

export interface PrivateRedis {
  url: string;
  port: number;
  cli(...args: string[]): string;
  start(): Promise<void>;
  stop(): void;
}

export async function privateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), "distx-rel-redis-"));
  const cli = (...args: string[]) => spawnSync("redis-cli", ["-p", String(port), ...args], { encoding: "utf8" }).stdout ?? "";
  const r: PrivateRedis = {
    url: `redis://127.0.0.1:${port}`,
    port,
    cli,
    async start() {
      execFileSync("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--daemonize", "yes", "--dir", dir, "--appendonly", "yes", "--save", "", "--pidfile", path.join(dir, "pid")]);
      await until("private redis", async () => cli("ping").includes("PONG"), 10_000, 50);
    },
    stop() {
      cli("shutdown", "nosave");
    },
  };
  await r.start();
  return r;
}
