// The Redis commands DistributeX sends, in one place: an operator's ACL user is granted exactly
// these (docs/security-backends.md), the secured-Redis tests start their server with them, and the
// backend tests record what the store, the blobs, the outputs and the lease really send and fail
// when a command is missing here. Adding a Redis call to a backend means adding its command here.

/**
 * Every command the state store, the result cache, blobs and outputs by reference, the pruning of
 * finished jobs and the lease send. ioredis adds INFO (ready check), CLIENT SETNAME
 * (connectionName) and SELECT (a /db in the URL), and sends EVALSHA before EVAL for defined
 * scripts. Lua scripts run with the same user's rights, so what they call is listed too.
 * Subcommands are written `command|subcommand`, as Redis ACL rules name them.
 */
export const REDIS_COMMANDS: readonly string[] = Object.freeze([
  "ping", "info", "client|setname", "select", "quit",
  "get", "set", "mget", "del", "expire", "pexpire",
  "hset", "hsetnx", "hgetall", "hmget", "hget", "hdel", "hexists", "hlen", "hvals",
  "sadd", "srem", "smembers", "scard",
  "zadd", "zrem", "zrange", "zrangebyscore", "zremrangebyscore", "zscore", "zmscore", "scan",
  "eval", "evalsha", "multi", "exec", "discard",
  // Blobs by reference (inputs and outputs: appended in pieces, read by range) and the pruning of finished jobs.
  "append", "getrange", "exists", "rename", "persist", "hkeys", "zremrangebyrank", "strlen",
]);

/** Commands whose ACL rule names a subcommand (`client|setname`), so a sent command is matched on two words. */
const WITH_SUBCOMMAND = new Set(REDIS_COMMANDS.filter((c) => c.includes("|")).map((c) => c.split("|")[0]!));

/** The ACL rule name of a sent command (`["CLIENT", "SETNAME", "x"]` → `client|setname`). */
export function redisCommandName(args: readonly string[]): string {
  const head = (args[0] ?? "").toLowerCase();
  return WITH_SUBCOMMAND.has(head) && args[1] !== undefined ? `${head}|${args[1].toLowerCase()}` : head;
}

/**
 * The ACL rule for DistributeX's user: its key prefix, no pub/sub channels, and only its commands
 * (`user NAME on >PASSWORD` goes in front).
 */
export function redisAclRule(prefix: string): string {
  return `~${prefix}:* resetchannels -@all ${REDIS_COMMANDS.map((c) => `+${c}`).join(" ")}`;
}
