// The scheduler's security setup: the cluster PKI (created on first start), the token store,
// the revocation list, TLS 1.3 server credentials, and the node lifecycle operations (join,
// renew, remove). One instance per scheduler, built at start (docs/security.md).
import { EventEmitter } from "node:events";
import { promises as fs, statSync } from "node:fs";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { randomBytes, X509Certificate } from "node:crypto";
import type { Redis } from "ioredis";
import { SERVER_HTTP2_SETTINGS } from "../../common/flow-window.js";
import { failedPrecondition, invalidArgument } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import type { AuthenticationContext } from "./authenticate.js";
import { unauthenticated, VerifiedTokens } from "./authenticate.js";
import { caPin, ensurePki, loadPki, NODE_LIFETIME_MS, signNodeCsr, splitPem, type ClusterPki } from "./pki.js";
import { checkExpiredRenewal, type ExpiredRenewalRequest } from "./expired-renewal.js";
import { RecordVerifier } from "./record-verifier.js";
import { Revocations } from "./revocations.js";
import { consumeToken, issueToken, TokenError, verifyToken, type TokenStore } from "./tokens.js";

export interface SecuritySettings {
  insecure: boolean;
  dataDir: string;
  certHosts: string;
  bootstrapJoinTokenFile?: string | undefined;
  state: "memory" | "redis";
  redisUrl: string;
  redisPrefix: string;
}

/**
 * TLS 1.3 only; client certificates are requested but not required (clients authenticate with
 * tokens, agents with certificates, and Join needs neither), and verified against the cluster CA:
 * grpc-js exposes a peer certificate to handlers only when that verification passed.
 */
class Tls13ServerCredentials extends grpc.ServerCredentials {
  constructor(pki: ClusterPki) {
    super({ requestCert: true, rejectUnauthorized: false, ...SERVER_HTTP2_SETTINGS }, Tls13ServerCredentials.contextOptions(pki));
  }

  /** Client certificates from any CA of ca.crt verify (both, during a CA rotation). */
  static contextOptions(pki: ClusterPki) {
    // The chain includes the issuing CA so that a joining agent can check it against its pin.
    return { ca: pki.caPem, cert: `${pki.serverCertPem.trim()}\n${pki.servingCaPem.trim()}\n`, key: pki.serverKeyPem, minVersion: "TLSv1.3" as const, maxVersion: "TLSv1.3" as const };
  }

  /** New certificates for connections from now on (grpc-js applies them with setSecureContext); open ones keep theirs. */
  reload(pki: ClusterPki): void {
    this.updateSecureContextOptions(Tls13ServerCredentials.contextOptions(pki));
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

/** How often a running scheduler looks whether `distx ca rotate|retire-old` changed its PKI files. */
export const PKI_WATCH_MS = 1000;

export const DEFAULT_JOIN_TTL_MS = 3_600_000;
export const INSECURE_WARNING_INTERVAL_MS = 60_000;

export class ClusterSecurity extends EventEmitter {
  private warnTimer?: NodeJS.Timeout;
  /** Node certificate lifetime (tests shorten it to exercise renewal). */
  nodeCertLifetimeMs = Number(process.env.DISTX_NODE_CERT_LIFETIME_MS) || NODE_LIFETIME_MS;

  private pkiWatch?: NodeJS.Timeout;
  private credentials?: Tls13ServerCredentials;

  private constructor(
    readonly insecure: boolean,
    /** Replaced as a whole when the files change (a CA rotation); never edited in place. */
    public pki: ClusterPki | undefined,
    readonly tokens: TokenStore,
    readonly revocations: Revocations,
    private readonly log: Logger,
  ) {
    super();
    this.authContext = { insecure, tokens, revocations, verified: new VerifiedTokens() };
  }

  static async open(settings: SecuritySettings, log: Logger, tokens: TokenStore, redis?: Redis): Promise<ClusterSecurity> {
    if (settings.insecure) return new ClusterSecurity(true, undefined, tokens, Revocations.inMemory(), log);
    const pki = await ensurePki(settings.dataDir, settings.certHosts.split(",").filter(Boolean));
    if (pki.created) {
      log.info({ event: "pki_created", dir: pki.paths.dir, caHash: caPin(pki.servingCaPem) }, `created the cluster CA and scheduler certificate in ${pki.paths.dir}`);
    }
    const revocations =
      redis
        ? await Revocations.redis(redis, settings.redisPrefix, {
            onRefreshError: (err) => log.warn({ event: "revocations_refresh_failed", err: err.message }, "cannot re-read the revocation list from Redis; the last one read stays in force"),
          })
        : await Revocations.file(path.join(settings.dataDir, "revoked.json"));
    const security = new ClusterSecurity(false, pki, tokens, revocations, log);
    security.watchPki();
    // A node another scheduler removed: its sessions here end too, as if removed here.
    revocations.on("node_revoked", (nodeId) => {
      log.warn({ event: "node_removed", nodeId, by: "another scheduler" }, "node removed through another scheduler; its certificate is refused from now on");
      security.emit("node_removed", nodeId);
    });
    // Agents on this machine that share the data dir join with it by themselves (agent/identity.ts):
    // whoever can read the data dir holds the CA key anyway, so this trusts nobody new.
    await security.writeLocalJoinToken(settings.bootstrapJoinTokenFile ?? path.join(settings.dataDir, "local-join.token"));
    return security;
  }

  /** Reuses the token in `file` while it is valid, else issues a new one (7 days, any number of uses). */
  private async writeLocalJoinToken(file: string): Promise<void> {
    try {
      await verifyToken(this.tokens, (await fs.readFile(file, "utf8")).trim(), "join");
      return;
    } catch {
      // none yet, or no longer valid
    }
    const { token } = await issueToken(this.tokens, { kind: "join", ttlMs: 7 * 86_400_000, description: "local agents (LocalCluster)" });
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    await fs.writeFile(file, token + "\n", { mode: 0o600 });
  }

  private verifier?: RecordVerifier;

  /**
   * Checks the node signature on agents' Kafka records (task events, load samples); undefined
   * with --insecure, where a record's key is believed as before.
   */
  get recordVerifier(): RecordVerifier | undefined {
    if (!this.pki) return undefined;
    return (this.verifier ??= new RecordVerifier(() => this.trustedCas, this.revocations));
  }

  private trustedCasOf?: { pki: ClusterPki; cas: X509Certificate[] };
  /** Every CA of ca.crt (two during a rotation), parsed once per PKI. */
  private get trustedCas(): X509Certificate[] {
    if (!this.pki) return [];
    if (this.trustedCasOf?.pki !== this.pki) this.trustedCasOf = { pki: this.pki, cas: splitPem(this.pki.caPem).map((c) => new X509Certificate(c)) };
    return this.trustedCasOf.cas;
  }

  /**
   * Watches the PKI files so that `distx ca rotate` and `distx ca retire-old`, run on this data
   * dir, take effect without a restart: new TLS settings for new connections, the new signing CA
   * for joins and renewals, the new trust for node certificates and signed Kafka records. A set
   * of files caught half-written (a key that does not fit its certificate) is read again on the
   * next look; until then the last good PKI stays in force.
   */
  private watchPki(): void {
    const files = this.pki ? [this.pki.paths.caCert, this.pki.paths.caKey, this.pki.paths.serverCert, this.pki.paths.serverKey] : [];
    const stamp = () => files.map((f) => { try { const st = statSync(f); return `${st.mtimeMs}:${st.size}:${st.ino}`; } catch { return "-"; } }).join("|");
    let seen = stamp();
    let loading = false;
    this.pkiWatch = setInterval(() => {
      const now = stamp();
      if (now === seen || loading || !this.pki) return;
      loading = true;
      loadPki(path.dirname(this.pki.paths.dir)).then(
        (next) => {
          loading = false;
          seen = now;
          this.applyPki(next);
        },
        (err: Error) => {
          loading = false;
          this.log.warn({ event: "pki_reload_failed", err: err.message }, "the PKI files changed but do not fit together (yet); keeping the current ones and looking again");
        },
      );
    }, PKI_WATCH_MS);
    this.pkiWatch.unref();
  }

  private applyPki(next: ClusterPki): void {
    const before = this.pki;
    if (before && before.caPem === next.caPem && before.caKeyPem === next.caKeyPem && before.serverCertPem === next.serverCertPem) return;
    this.pki = next;
    this.credentials?.reload(next);
    this.verifier?.reset();
    this.log.warn(
      { event: "pki_reloaded", trustedCas: splitPem(next.caPem).map(caPin), signingCa: caPin(next.signingCaPem), servingCa: caPin(next.servingCaPem) },
      "cluster PKI reloaded (CA rotation): new connections, joins and renewals use it now",
    );
  }

  /** One context for the scheduler's life: it holds the cache of verified tokens. */
  private readonly authContext: AuthenticationContext;

  get context(): AuthenticationContext {
    return this.authContext;
  }

  serverCredentials(): grpc.ServerCredentials {
    if (!this.pki) return grpc.ServerCredentials.createInsecure();
    return (this.credentials ??= new Tls13ServerCredentials(this.pki));
  }

  /** The pin a joining agent checks: the CA that issued the certificate served now (the old one during a rotation). */
  get caHash(): string | undefined {
    return this.pki && caPin(this.pki.servingCaPem);
  }

  /** --insecure is loud: one warning at start and one every minute after. */
  startInsecureWarning(): void {
    if (!this.insecure) return;
    const warn = () =>
      this.log.warn({ event: "insecure" }, "running with --insecure: no TLS, no authentication; anyone who reaches this port controls the cluster");
    warn();
    this.warnTimer = setInterval(warn, INSECURE_WARNING_INTERVAL_MS);
    this.warnTimer.unref();
  }

  stop(): void {
    clearInterval(this.warnTimer);
    clearInterval(this.pkiWatch);
    this.revocations.close();
  }

  async createJoinToken(ttlMs = DEFAULT_JOIN_TTL_MS, uses = 1, description = ""): Promise<{ token: string; caHash: string; expiresAtMs: number }> {
    if (!this.pki) throw failedPrecondition("the cluster runs with --insecure: agents connect without joining");
    const { token, record } = await issueToken(this.tokens, { kind: "join", ttlMs, uses, description: description || "agent join" });
    this.log.info({ event: "join_token_created", tokenId: record.id, uses, expiresAtMs: record.expiresAtMs }, "join token created");
    return { token, caHash: caPin(this.pki.servingCaPem), expiresAtMs: record.expiresAtMs ?? 0 };
  }

  /** Takes one use of the join token, assigns a node id and signs the agent's CSR for it. */
  async join(joinToken: string, csrPem: string): Promise<{ nodeId: string; certificatePem: string; caPem: string }> {
    if (!this.pki) throw failedPrecondition("the cluster runs with --insecure: agents connect without joining");
    if (!csrPem) throw invalidArgument("csr_pem is required");
    try {
      await consumeToken(this.tokens, joinToken, "join");
    } catch (err) {
      if (err instanceof TokenError) throw unauthenticated(`join refused: ${err.message}`);
      throw err;
    }
    const nodeId = `node-${randomBytes(4).toString("hex")}`; // the format the registry has always used
    const cert = await this.sign(csrPem, nodeId);
    this.log.info({ event: "node_joined", nodeId, serial: cert.serial }, "agent joined; node certificate issued");
    return { nodeId, certificatePem: cert.certPem, caPem: this.pki.caPem };
  }

  async renew(nodeId: string, csrPem: string): Promise<{ certificatePem: string; caPem: string }> {
    if (!this.pki) throw failedPrecondition("the cluster runs with --insecure");
    const cert = await this.sign(csrPem, nodeId);
    this.log.info({ event: "node_cert_renewed", nodeId, serial: cert.serial }, "node certificate renewed");
    return { certificatePem: cert.certPem, caPem: this.pki.caPem };
  }

  /**
   * Renewal after expiry (an agent stopped or cut off past notAfter): the same node id, if the
   * expired certificate is ours, expired less than a certificate lifetime ago, its node not
   * removed, and the proof signed by its key (expired-renewal.ts).
   */
  async renewExpired(req: ExpiredRenewalRequest): Promise<{ nodeId: string; certificatePem: string; caPem: string }> {
    if (!this.pki) throw failedPrecondition("the cluster runs with --insecure");
    const old = checkExpiredRenewal(req, this.trustedCas, this.revocations, this.nodeCertLifetimeMs);
    const cert = await this.sign(req.csrPem, old.nodeId);
    this.log.warn(
      { event: "node_cert_renewed_after_expiry", nodeId: old.nodeId, oldSerial: old.serial, expiredAt: new Date(old.notAfterMs).toISOString(), serial: cert.serial },
      "node certificate renewed after it had expired (proof of the old key)",
    );
    return { nodeId: old.nodeId, certificatePem: cert.certPem, caPem: this.pki.caPem };
  }

  private async sign(csrPem: string, nodeId: string) {
    try {
      // From the signing CA: during a rotation the new one, so renewal moves nodes over.
      return await signNodeCsr(this.pki!.signingCaPem, this.pki!.caKeyPem, csrPem, nodeId, this.nodeCertLifetimeMs);
    } catch (err) {
      throw invalidArgument(`bad certificate request: ${(err as Error).message}`);
    }
  }

  /** Denies the node's certificates from now on and tells listeners (sessions) to drop it. */
  async removeNode(nodeId: string): Promise<void> {
    await this.revocations.revokeNode(nodeId);
    this.log.warn({ event: "node_removed", nodeId }, "node removed; its certificate is refused from now on");
    this.emit("node_removed", nodeId);
  }
}

/** The bootstrap admin API token, written once (0600) beside the PKI: `distx init` / first start. */

