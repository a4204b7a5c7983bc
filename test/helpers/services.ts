// Real Kafka and Redis for the backend tests: the addresses come from DISTX_TEST_KAFKA and
// DISTX_TEST_REDIS (set by `eval "$(scripts/test-services.sh)"`); when unset, that script is
// run here, so `npx vitest run test/integration/backends` works on its own.
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { kafkaSecurity, type KafkaSecurity } from "../../common/backend-security.js";

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export function testServices(): { kafka: string; redis: string } {
  if (!process.env.DISTX_TEST_KAFKA || !process.env.DISTX_TEST_REDIS) {
    const out = execFileSync("bash", [path.join(repo, "scripts/test-services.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    for (const m of out.matchAll(/^export (\w+)=(.*)$/gm)) process.env[m[1]!] = m[2]!;
  }
  return { kafka: process.env.DISTX_TEST_KAFKA!, redis: process.env.DISTX_TEST_REDIS! };
}

/** A fresh namespace for topics and keys, so test files sharing a broker and a Redis never meet. */
export const uniquePrefix = (tag: string) => `t${tag}${randomUUID().slice(0, 8)}`;

export { freePort } from "./net.js";

export { sleep, until } from "./poll.js";

/** The SASL_SSL broker of scripts/kafka-secure.sh: its address and the folder with ca.pem and the roles' password files. */
export function secureKafka(): { brokers: string; dir: string } {
  if (!process.env.DISTX_TEST_KAFKA_SECURE || !process.env.DISTX_TEST_KAFKA_SECURE_DIR) {
    // The setup script picks the port (this checkout's broker, or a free pair) and starts it.
    const out = execFileSync("bash", ["-c", "source scripts/setup/15-kafka-secure.sh >&2 && bash scripts/kafka-secure.sh env"], { cwd: repo, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    for (const m of out.matchAll(/^export (\w+)=(.*)$/gm)) process.env[m[1]!] = m[2]!;
  }
  return { brokers: process.env.DISTX_TEST_KAFKA_SECURE!, dir: process.env.DISTX_TEST_KAFKA_SECURE_DIR! };
}

/** Grants the role ACLs (scheduler, agent) for a topic prefix on the secure broker. */
export function grantKafkaAcls(prefix: string): void {
  const env = { ...process.env, KAFKA_SECURE_PORT: process.env.DISTX_TEST_KAFKA_SECURE!.split(":")[1]! };
  execFileSync("bash", [path.join(repo, "scripts/kafka-secure.sh"), "acls", prefix], { stdio: ["ignore", "inherit", "inherit"], env });
}

export type KafkaRole = "scheduler" | "agent";

/** The secure broker's two role principals (SCRAM over TLS, the password files in `dir`): a role's
 * kafkajs settings (another password: a wrong one), and the CLI flags that run a process as it. */
export function secureKafkaRoles(dir: string): { security: (user: KafkaRole, password?: string) => KafkaSecurity; args: (user: KafkaRole) => string[] } {
  const ca = path.join(dir, "ca.pem");
  return {
    security: (user, password) =>
      kafkaSecurity({
        kafkaSaslMechanism: "scram-sha-512",
        kafkaUsername: `distx-${user}`,
        ...(password !== undefined ? { kafkaPassword: password } : { kafkaPasswordFile: path.join(dir, `${user}.password`) }),
        kafkaTls: true,
        kafkaCaFile: ca,
      }),
    args: (user) => ["--kafka-sasl-mechanism", "scram-sha-512", "--kafka-ca-file", ca, "--kafka-username", `distx-${user}`, "--kafka-password-file", path.join(dir, `${user}.password`)],
  };
}
