// A private redis-server watched with MONITOR: every command DistributeX's backends send to it is
// recorded by its ACL rule name, so a backend test can assert that the command list operators
// grant (scheduler/backends/redis-commands.ts) covers what the code really sends. MONITOR also
// shows the commands Lua scripts call (source "lua"), which the ACL checks too.
import { Redis } from "ioredis";
import { REDIS_COMMANDS, redisCommandName } from "../../scheduler/backends/redis-commands.js";
import { privateRedis, until } from "./private-redis.js";

export interface AuditedRedis {
  url: string;
  /** A connection for the test's own checks (KEYS, TTL…): its commands are not recorded. */
  checks: Redis;
  /** Every command sent by anyone else, by ACL rule name. */
  seen: ReadonlySet<string>;
  /** The commands sent so far that REDIS_COMMANDS does not grant, sorted. */
  notGranted(): Promise<string[]>;
  stop(): Promise<void>;
}

export async function auditedRedis(): Promise<AuditedRedis> {
  const server = await privateRedis();
  const seen = new Set<string>();
  const ignoredSources = new Set<string>();
  const monitor = await new Redis(server.url).monitor();
  monitor.on("monitor", (_time: string, args: string[], source: string) => {
    if (!ignoredSources.has(source)) seen.add(redisCommandName(args));
  });
  const checks = new Redis(server.url, { lazyConnect: true });
  await checks.connect();
  ignoredSources.add(`${checks.stream.localAddress}:${checks.stream.localPort}`);
  // MONITOR is asynchronous to the commands it reports: a sentinel from the checks connection
  // marks when everything sent before it has been seen.
  let marks = 0;
  const settle = async () => {
    const mark = `distx-audit-mark-${++marks}`;
    let arrived = false;
    const onMark = (_t: string, args: string[]) => {
      if (args[1] === mark) arrived = true;
    };
    monitor.on("monitor", onMark);
    await checks.echo(mark);
    await until("the MONITOR sentinel", async () => arrived, 5000, 10);
    monitor.off("monitor", onMark);
  };
  const granted = new Set(REDIS_COMMANDS);
  return {
    url: server.url,
    checks,
    seen,
    async notGranted() {
      await settle();
      return [...seen].filter((c) => !granted.has(c)).sort();
    },
    async stop() {
      monitor.disconnect();
      checks.disconnect();
      server.stop();
    },
  };
}
