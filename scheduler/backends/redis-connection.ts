// The Redis connection every Redis backend opens (state store, lease, token store): fails fast
// at start, rides out restarts once up, TLS and ACL user from the URL.
import { Redis } from "ioredis";
import { redactUrl, redisTls } from "../../common/backend-security.js";

/**
 * Opens a connection that fails fast at start (a bad address is an error within
 * connectTimeoutMs) and, once up, rides out Redis restarts: commands wait for the reconnect
 * instead of failing, so a result is never dropped because Redis blinked.
 */
export async function connectRedis(url: string, connectTimeoutMs = 5000, name = "distx", caFile?: string): Promise<Redis> {
  // rediss://user:password@…: TLS plus an ACL user; the URL's password never reaches a message.
  const tls = redisTls(url, caFile);
  const shown = redactUrl(url);
  const redis = new Redis(url, {
    ...(tls ? { tls } : {}),
    lazyConnect: true,
    connectionName: name,
    maxRetriesPerRequest: null,
    enableAutoPipelining: true,
    connectTimeout: connectTimeoutMs,
    retryStrategy: (times) => Math.min(50 * times, 1000),
  });
  let lastError = "";
  redis.on("error", (err: Error) => (lastError = err.message));
  const timer = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`cannot reach Redis at ${shown} within ${connectTimeoutMs} ms${lastError ? `: ${lastError}` : ""}`)), connectTimeoutMs).unref(),
  );
  try {
    await Promise.race([redis.connect().then(() => redis.ping()), timer]);
  } catch (err) {
    redis.disconnect();
    let msg = (err as Error).message;
    // "Connection is closed." alone hides why (NOAUTH, WRONGPASS, a TLS failure): add the last error.
    if (lastError && !msg.includes(lastError)) msg += ` (${lastError})`;
    throw new Error(msg.startsWith("cannot reach Redis") ? msg : `cannot reach Redis at ${shown}: ${msg}`);
  }
  return redis;
}
