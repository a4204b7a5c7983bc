// The agent's node identity: a key that never leaves this machine and a certificate from the
// cluster CA naming its node id. First start: TLS bootstrap with a join token, checking the
// scheduler's CA against the pinned hash (as `kubeadm join --discovery-token-ca-cert-hash`);
// after that, mutual TLS with the stored certificate, renewed at 2/3 of its lifetime.
import { createHash, X509Certificate } from "node:crypto";
import { existsSync, promises as fs, readFileSync } from "node:fs";
import path from "node:path";
import tls from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { Backoff } from "../common/backoff.js";
import type { AgentConfig } from "../common/config.js";
import type { Logger } from "../common/logger.js";
import { CHANNEL_OPTIONS, v1 } from "../common/proto.js";
import { secureChannel, type SecureChannel } from "../common/secure-channel.js";
import type { AgentServiceGrpcClient } from "../common/types.js";
import { certInfo, createCsr } from "../scheduler/auth/pki.js";
import { renewalProof } from "../common/renewal-proof.js";

/** Nothing (or nothing in time) answered at the scheduler's address: worth another try. */
class SchedulerUnreachableError extends Error {}

export interface NodeIdentity {
  nodeId: string;
  keyPem: string;
  certPem: string;
  caPem: string;
  notBeforeMs: number;
  notAfterMs: number;
}

export const identityDir = (config: Pick<AgentConfig, "dataDir">): string => path.join(config.dataDir, "agent");

const files = (dir: string) => ({ key: path.join(dir, "node.key"), cert: path.join(dir, "node.crt"), ca: path.join(dir, "ca.crt") });

export function loadIdentity(dir: string): NodeIdentity | undefined {
  const f = files(dir);
  if (!existsSync(f.key) || !existsSync(f.cert) || !existsSync(f.ca)) return undefined;
  const certPem = readFileSync(f.cert, "utf8");
  const info = certInfo(certPem);
  if (!info.nodeId) throw new Error(`${f.cert} names no node id; remove ${dir} and join again`);
  return { nodeId: info.nodeId, keyPem: readFileSync(f.key, "utf8"), certPem, caPem: readFileSync(f.ca, "utf8"), notBeforeMs: info.notBeforeMs, notAfterMs: info.notAfterMs };
}

export async function saveIdentity(dir: string, id: NodeIdentity): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const f = files(dir);
  for (const [file, text] of [
    [f.key, id.keyPem],
    [f.cert, id.certPem],
    [f.ca, id.caPem],
  ] as const) {
    const tmp = `${file}.${process.pid}.tmp`;
    await fs.writeFile(tmp, text, { mode: 0o600 });
    await fs.rename(tmp, file);
  }
}

/** sha256 of a certificate's SubjectPublicKeyInfo, as `sha256:<hex>` (the CA pin). */
export function spkiPin(cert: X509Certificate): string {
  const der = cert.publicKey.export({ type: "spki", format: "der" });
  return `sha256:${createHash("sha256").update(der).digest("hex")}`;
}

/**
 * Reads the certificate chain the scheduler presents (without trusting it yet) and returns the
 * CA in it whose key matches the pin. The TLS connection made afterwards verifies the scheduler's
 * certificate against that CA, so a server that merely copied the CA certificate fails there.
 */
export function discoverPinnedCa(address: string, pin: string, timeoutMs = 10_000): Promise<string> {
  const m = /^\[?([^\]]+)\]?:(\d+)$/.exec(address);
  if (!m) return Promise.reject(new Error(`bad scheduler address ${address}`));
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: m[1], port: Number(m[2]), rejectUnauthorized: false, ALPNProtocols: ["h2"], servername: /^[\d.:]+$/.test(m[1]!) ? undefined : m[1] });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new SchedulerUnreachableError(`no TLS answer from ${address} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("error", (err) => {
      clearTimeout(timer);
      reject(new SchedulerUnreachableError(`cannot reach the scheduler at ${address} over TLS: ${err.message}`));
    });
    socket.once("secureConnect", () => {
      clearTimeout(timer);
      let cert: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
      const seen = new Set<string>();
      let found: string | undefined;
      while (cert?.raw && !seen.has(cert.fingerprint256)) {
        seen.add(cert.fingerprint256);
        const x = new X509Certificate(cert.raw);
        if (x.ca && spkiPin(x) === pin) found = x.toString();
        cert = cert.issuerCertificate;
      }
      socket.destroy();
      if (found) resolve(found);
      else reject(new Error(`the scheduler at ${address} presented no CA matching ${pin}: wrong scheduler or wrong --ca-hash (refusing to join)`));
    });
  });
}

function agentClient(address: string, channel: SecureChannel): AgentServiceGrpcClient {
  return new (v1().AgentService)(address, channel.credentials, { ...CHANNEL_OPTIONS, ...channel.options }) as unknown as AgentServiceGrpcClient;
}

const unary = <Res>(fn: (cb: (err: grpc.ServiceError | null, res?: Res) => void) => void): Promise<Res> =>
  new Promise((resolve, reject) => fn((err, res) => (err || !res ? reject(err ?? new Error("empty reply")) : resolve(res))));

/** Joins the cluster with the configured join token; stores and returns the new identity. */
export async function join(config: AgentConfig, log: Logger): Promise<NodeIdentity> {
  if (!config.joinToken && config.joinTokenFile) config = { ...config, joinToken: readFileSync(config.joinTokenFile, "utf8").trim() };
  // On the scheduler's own machine, sharing its data dir (`distx up`): whoever can read that dir
  // holds the CA key anyway, so the local join token and the CA file there are used by default.
  const localToken = path.join(config.dataDir, "local-join.token");
  const localCa = path.join(config.dataDir, "pki", "ca.crt");
  if (!config.joinToken && !config.caHash && !config.ca && existsSync(localToken) && existsSync(localCa)) {
    config = { ...config, joinToken: readFileSync(localToken, "utf8").trim(), ca: localCa };
    log.info({ event: "local_join", dir: config.dataDir }, "joining with the local join token of this machine's cluster data dir");
  }
  if (!config.joinToken) throw new Error(`no node certificate in ${identityDir(config)} and no join token: run \`distx join-token create\` on the cluster and pass --join-token and --ca-hash`);
  if (!config.caHash && !config.ca) throw new Error("joining needs the CA pin (--ca-hash sha256:…, printed with the join token) or the CA file (--ca)");
  const addresses = config.scheduler.split(",");
  // A scheduler that is down, restarting or standing by (not listening) is an outage, as for
  // registration: try each address in turn, back off after each full round, for up to
  // connectTimeoutMs (0 = for ever). A refusal (bad token, wrong CA pin) fails at once.
  const backoff = new Backoff(200, 5000);
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    const address = addresses[attempt % addresses.length]!;
    try {
      return await joinAt(address, config, log);
    } catch (err) {
      const message = joinErrorMessage(err);
      if (!isTransientJoinError(err)) throw new Error(`join failed: ${message}`);
      const waited = Date.now() - started;
      if (config.connectTimeoutMs > 0 && waited >= config.connectTimeoutMs) {
        throw new Error(`join failed: ${message} (no scheduler answered within connectTimeoutMs=${config.connectTimeoutMs})`);
      }
      if ((attempt + 1) % addresses.length !== 0) continue;
      const delay = backoff.next();
      if (backoff.attempts <= 5 || backoff.attempts % 10 === 0) {
        log.warn({ event: "join_retry", attempt: backoff.attempts, retryInMs: delay, scheduler: config.scheduler, err: message }, "no scheduler reachable to join; retrying");
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

const joinErrorMessage = (err: unknown): string => (err as grpc.ServiceError).details || (err as Error).message;

/** Worth another try: nothing answered (or not in time); the scheduler did not refuse us. */
function isTransientJoinError(err: unknown): boolean {
  const code = (err as grpc.ServiceError).code;
  if (code === grpc.status.UNAVAILABLE || code === grpc.status.DEADLINE_EXCEEDED) return true;
  return err instanceof SchedulerUnreachableError;
}


async function joinAt(address: string, config: AgentConfig, log: Logger): Promise<NodeIdentity> {
  let caPem: string;
  if (config.ca) {
    caPem = readFileSync(config.ca, "utf8");
    if (config.caHash && spkiPin(new X509Certificate(caPem)) !== config.caHash) throw new Error(`--ca ${config.ca} does not match --ca-hash ${config.caHash}`);
  } else caPem = await discoverPinnedCa(address, config.caHash!);
  const { csrPem, keyPem } = await createCsr();
  const client = agentClient(address, secureChannel(address, { ca: Buffer.from(caPem) }));
  try {
    const res = await unary<{ nodeId: string; certificatePem: string; caPem: string }>((cb) =>
      client.Join({ joinToken: config.joinToken, csrPem }, { deadline: Date.now() + 15_000 }, cb),
    );
    const info = certInfo(res.certificatePem);
    const identity: NodeIdentity = { nodeId: res.nodeId, keyPem, certPem: res.certificatePem, caPem: res.caPem || caPem, notBeforeMs: info.notBeforeMs, notAfterMs: info.notAfterMs };
    await saveIdentity(identityDir(config), identity);
    log.info({ event: "joined", nodeId: identity.nodeId, scheduler: address, dir: identityDir(config), notAfter: new Date(info.notAfterMs).toISOString() }, "joined the cluster; node certificate stored");
    return identity;
  } finally {
    client.close();
  }
}

/** A new key and certificate for the same node, asked for over the current mTLS channel. */
export async function renew(config: AgentConfig, current: NodeIdentity, client: AgentServiceGrpcClient, expect?: (keyPem: string) => void): Promise<NodeIdentity> {
  const { csrPem, keyPem } = await createCsr();
  expect?.(keyPem);
  // The current certificate and a proof of its key go along every time: if it has expired (the
  // agent was stopped past its renewal), the TLS check no longer admits it and the scheduler
  // renews on the proof instead (common/renewal-proof.ts); clock skew cannot make us guess wrong.
  const proof = renewalProof(current.keyPem, csrPem);
  const res = await unary<{ certificatePem: string; caPem: string }>((cb) =>
    client.RenewCertificate({ csrPem, expiredCertPem: current.certPem, proof }, { deadline: Date.now() + 15_000 }, cb),
  );
  const info = certInfo(res.certificatePem);
  if (info.nodeId !== current.nodeId) throw new Error(`renewal returned a certificate for ${info.nodeId}, not ${current.nodeId}`);
  const next: NodeIdentity = { nodeId: current.nodeId, keyPem, certPem: res.certificatePem, caPem: res.caPem || current.caPem, notBeforeMs: info.notBeforeMs, notAfterMs: info.notAfterMs };
  await saveIdentity(identityDir(config), next);
  return next;
}

/** Mutual TLS to one scheduler address with the node certificate (IP targets: common/secure-channel.ts). */
export function mtlsChannel(address: string, id: NodeIdentity): SecureChannel {
  return secureChannel(address, { ca: Buffer.from(id.caPem), key: Buffer.from(id.keyPem), cert: Buffer.from(id.certPem) });
}
