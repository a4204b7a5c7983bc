// A private redis-server (Debian's, built with TLS) configured as a production one should be:
// TLS only (--port 0), certificates from a CA made here with openssl, the default user off, and
// one ACL user limited to a key prefix and the commands DistributeX sends.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { redisAclRule } from "../../scheduler/backends/redis-commands.js";
import { freePort, sleep } from "./services.js";

export interface SecureRedis {
  /** rediss://distx:<password>@127.0.0.1:<port> */
  url: string;
  port: number;
  user: string;
  password: string;
  prefix: string;
  caFile: string;
  dir: string;
  stop(): Promise<void>;
}

function makeCerts(dir: string): void {
  const run = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=distx-test-redis-ca", "-keyout", "ca.key", "-out", "ca.pem");
  run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "redis.key", "-out", "redis.csr");
  writeFileSync(path.join(dir, "redis.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  run("x509", "-req", "-in", "redis.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "redis.ext", "-out", "redis.crt");
}

export async function startSecureRedis(prefix: string): Promise<SecureRedis> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "distx-redis-tls-"));
  makeCerts(dir);
  const port = await freePort();
  const user = "distx";
  const password = randomBytes(18).toString("hex");
  const acl = `${user} on >${password} ${redisAclRule(prefix)}`;
  // ACL lines go in a config file: on the command line a quoted "default off" is one username.
  const conf = path.join(dir, "redis.conf");
  writeFileSync(conf, `user default off\nuser ${acl}\n`, { mode: 0o600 });
  const child: ChildProcess = spawn(
    "redis-server",
    [
      conf,
      "--port", "0", "--tls-port", String(port), "--bind", "127.0.0.1",
      "--tls-cert-file", path.join(dir, "redis.crt"), "--tls-key-file", path.join(dir, "redis.key"),
      "--tls-ca-cert-file", path.join(dir, "ca.pem"), "--tls-auth-clients", "no", "--tls-protocols", "TLSv1.3",
      "--save", "", "--appendonly", "no", "--dir", dir,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let log = "";
  child.stdout!.on("data", (d: Buffer) => (log += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  const deadline = Date.now() + 10_000;
  while (!/Ready to accept connections/.test(log)) {
    if (child.exitCode !== null) throw new Error(`redis-server exited: ${log.slice(-2000)}`);
    if (Date.now() > deadline) throw new Error(`redis-server did not start: ${log.slice(-2000)}`);
    await sleep(50);
  }
  return {
    url: `rediss://${user}:${password}@127.0.0.1:${port}`,
    port,
    user,
    password,
    prefix,
    caFile: path.join(dir, "ca.pem"),
    dir,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}
