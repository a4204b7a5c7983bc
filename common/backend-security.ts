// Credentials and TLS for the Kafka and Redis clients we make (scheduler and agents alike).
// Secrets come from the config (or a file it names) and go only into the client options: never
// into a log line or an error message (see redactUrl).
import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import type { SASLOptions } from "kafkajs";

export type KafkaSaslMechanism = "none" | "plain" | "scram-sha-256" | "scram-sha-512";

/** How a Kafka client authenticates and whether it speaks TLS: the config's kafka* settings. */
export interface KafkaSecuritySettings {
  kafkaSaslMechanism: KafkaSaslMechanism;
  kafkaUsername?: string | undefined;
  kafkaPassword?: string | undefined;
  kafkaPasswordFile?: string | undefined;
  kafkaTls: boolean;
  kafkaCaFile?: string | undefined;
}

/** What kafkajs takes, resolved once (files read) so that every client of one process agrees. */
export interface KafkaSecurity {
  ssl?: ConnectionOptions | boolean;
  sasl?: SASLOptions;
}

/** Bounded reads: a CA bundle or a password file is small; a huge one is a mistake, not data. */
const MAX_SECRET_FILE_BYTES = 1024 * 1024;

function readSmallFile(path: string, what: string): Buffer {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    throw new Error(`${what}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (buf.byteLength > MAX_SECRET_FILE_BYTES) throw new Error(`${what}: ${path} is larger than ${MAX_SECRET_FILE_BYTES} bytes`);
  return buf;
}

/**
 * Turns the settings into kafkajs options. Throws (naming the setting, never the secret) when
 * SASL is asked for without a user or password. SASL without TLS is allowed (SASL_PLAINTEXT
 * listeners exist) but a password would then cross the network in clear for PLAIN.
 */
export function kafkaSecurity(s: KafkaSecuritySettings): KafkaSecurity {
  const out: KafkaSecurity = {};
  if (s.kafkaTls || s.kafkaCaFile) {
    // Without a CA file the system's roots verify the broker; with one, only that CA does.
    out.ssl = s.kafkaCaFile ? { ca: [readSmallFile(s.kafkaCaFile, "kafkaCaFile")], rejectUnauthorized: true } : { rejectUnauthorized: true };
  }
  if (s.kafkaSaslMechanism !== "none") {
    if (!s.kafkaUsername) throw new Error(`kafkaUsername: required with kafkaSaslMechanism=${s.kafkaSaslMechanism}`);
    if (s.kafkaPassword !== undefined && s.kafkaPasswordFile !== undefined) throw new Error("kafkaPassword and kafkaPasswordFile: set one, not both");
    const password = s.kafkaPasswordFile !== undefined ? readSmallFile(s.kafkaPasswordFile, "kafkaPasswordFile").toString("utf8").replace(/\r?\n$/, "") : s.kafkaPassword;
    if (!password) throw new Error(`kafkaPassword or kafkaPasswordFile: required with kafkaSaslMechanism=${s.kafkaSaslMechanism}`);
    out.sasl = { mechanism: s.kafkaSaslMechanism, username: s.kafkaUsername, password } as SASLOptions;
  }
  return out;
}

/** TLS options for ioredis: on for rediss:// URLs or when a CA file is given; undefined otherwise. */
export function redisTls(url: string, caFile?: string): ConnectionOptions | undefined {
  if (!/^rediss:\/\//i.test(url) && !caFile) return undefined;
  return caFile ? { ca: [readSmallFile(caFile, "redisCaFile")], rejectUnauthorized: true } : { rejectUnauthorized: true };
}

/** A Redis URL fit for a log line or an error: the password (and only it) replaced. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString().replace(/\/$/, "");
  } catch {
    // Not parseable: drop anything between "//" and "@", where credentials would sit.
    return url.replace(/\/\/[^@/]*@/, "//***@");
  }
}
