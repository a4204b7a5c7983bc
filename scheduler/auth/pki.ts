// The cluster's PKI: one CA per cluster (EC P-256), the scheduler's server certificate, and
// node certificates issued at join from the agent's CSR (the agent's key never leaves it).
// node:crypto makes keys but not X.509 certificates; @peculiar/x509 (pinned, WebCrypto based,
// maintained, typed, no native code) builds and parses them. node-forge was the other choice,
// but it signs certificates only with RSA.
import "reflect-metadata"; // @peculiar/x509 resolves its parsers through tsyringe, which needs it
import * as x509 from "@peculiar/x509";
import { createHash, createPublicKey, KeyObject, randomBytes, webcrypto, X509Certificate } from "node:crypto";
import { existsSync, promises as fs } from "node:fs";
import path from "node:path";

const crypto = webcrypto as unknown as Crypto;
x509.cryptoProvider.set(crypto);

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DAY = 86_400_000;
/** Node identity in a certificate: a URI subject alternative name. */
export const NODE_URI_PREFIX = "distx-node:";
export const NODE_ID_PATTERN = /^node-[0-9a-f]{8,32}$/;

export const CA_LIFETIME_MS = 10 * 365 * DAY;
export const SERVER_LIFETIME_MS = 365 * DAY;
export const NODE_LIFETIME_MS = 30 * DAY;

export interface PkiPaths {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
}

export const pkiPaths = (dataDir: string): PkiPaths => {
  const dir = path.join(dataDir, "pki");
  return { dir, caCert: path.join(dir, "ca.crt"), caKey: path.join(dir, "ca.key"), serverCert: path.join(dir, "scheduler.crt"), serverKey: path.join(dir, "scheduler.key") };
};

export interface ClusterPki {
  /**
   * What `pki/ca.crt` holds: the CAs everyone trusts. One CA, or two during a CA rotation (the
   * new one first, then the old one: `distx ca rotate` … `distx ca retire-old`). Clients, agents
   * and the scheduler's check of node certificates trust every CA in it.
   */
  caPem: string;
  /** The CA new node and scheduler certificates are issued from (the first in ca.crt; its key is ca.key). */
  signingCaPem: string;
  caKeyPem: string;
  /** The CA that issued the scheduler certificate being served (the old one until the old CA is retired). */
  servingCaPem: string;
  serverCertPem: string;
  serverKeyPem: string;
  paths: PkiPaths;
}

/** The certificates of a PEM bundle, each as its own PEM text. */
export function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((c) => `${c}\n`) ?? [];
}

/** The bundle's CA that issued `certPem` (signature checked), or undefined. */
function issuerIn(bundle: string[], certPem: string): string | undefined {
  const cert = new X509Certificate(certPem);
  return bundle.find((ca) => {
    const c = new X509Certificate(ca);
    return cert.checkIssued(c) && cert.verify(c.publicKey);
  });
}

/** The PKI as read from its files: which CA signs, which one issued the served certificate. Throws when they do not fit together. */
function assemble(caPem: string, caKeyPem: string, serverCertPem: string, serverKeyPem: string, paths: PkiPaths): ClusterPki {
  const cas = splitPem(caPem);
  const signingCaPem = cas[0];
  if (!signingCaPem) throw new Error(`${paths.caCert} holds no certificate`);
  const signing = new X509Certificate(signingCaPem);
  if (!signing.publicKey.equals(createPublicKey(caKeyPem))) throw new Error(`${paths.caKey} is not the key of the first CA in ${paths.caCert}`);
  if (!new X509Certificate(serverCertPem).publicKey.equals(createPublicKey(serverKeyPem))) throw new Error(`${paths.serverKey} is not the key of ${paths.serverCert}`);
  const servingCaPem = issuerIn(cas, serverCertPem);
  if (!servingCaPem) throw new Error(`${paths.serverCert} was not issued by a CA in ${paths.caCert}`);
  return { caPem, signingCaPem, caKeyPem, servingCaPem, serverCertPem, serverKeyPem, paths };
}

const serial = () => {
  const b = randomBytes(16);
  b[0]! &= 0x7f; // a positive INTEGER
  return b.toString("hex");
};

async function keyPair(): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as CryptoKeyPair;
}

const keyToPem = (key: CryptoKey): string => KeyObject.from(key).export({ type: "pkcs8", format: "pem" }) as string;

async function pemToKey(pem: string): Promise<CryptoKey> {
  const der = x509.PemConverter.decodeFirst(pem);
  return crypto.subtle.importKey("pkcs8", der, ALG, false, ["sign"]);
}

/** The CA pin as `kubeadm join --discovery-token-ca-cert-hash` has it: sha256 of the CA's SubjectPublicKeyInfo. */
export function caPin(caPem: string): string {
  const cert = new x509.X509Certificate(caPem);
  return `sha256:${createHash("sha256").update(Buffer.from(cert.publicKey.rawData)).digest("hex")}`;
}

async function writeSecret(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, text, { mode: 0o600 });
  await fs.rename(tmp, file);
}

export async function createCa(commonName = "DistributeX cluster CA"): Promise<{ certPem: string; keyPem: string }> {
  const keys = await keyPair();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}, O=DistributeX`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + CA_LIFETIME_MS),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString("pem"), keyPem: keyToPem(keys.privateKey) };
}

interface IssueOptions {
  caPem: string;
  caKeyPem: string;
  publicKey: CryptoKey | x509.PublicKey;
  commonName: string;
  dns?: string[];
  ips?: string[];
  uris?: string[];
  usage: "server" | "client";
  lifetimeMs: number;
}

async function issue(o: IssueOptions): Promise<x509.X509Certificate> {
  const ca = new x509.X509Certificate(o.caPem);
  const now = Date.now();
  const names: x509.JsonGeneralName[] = [
    ...(o.dns ?? []).map((value) => ({ type: "dns" as const, value })),
    ...(o.ips ?? []).map((value) => ({ type: "ip" as const, value })),
    ...(o.uris ?? []).map((value) => ({ type: "url" as const, value })),
  ];
  const publicKey = o.publicKey instanceof x509.PublicKey ? await o.publicKey.export(ALG, ["verify"], crypto) : o.publicKey;
  return x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${o.commonName}, O=DistributeX`,
    issuer: ca.subject,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + o.lifetimeMs),
    publicKey,
    signingKey: await pemToKey(o.caKeyPem),
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      new x509.ExtendedKeyUsageExtension([o.usage === "server" ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(ca, false, crypto),
    ],
  });
}

/**
 * Loads the cluster PKI from `<dataDir>/pki`, creating the CA and the scheduler certificate when
 * absent. `hosts` are added to the scheduler certificate's names (localhost and loopback always).
 */
export async function ensurePki(dataDir: string, hosts: string[] = []): Promise<ClusterPki & { created: boolean }> {
  const paths = pkiPaths(dataDir);
  if (existsSync(paths.caCert) && existsSync(paths.caKey) && existsSync(paths.serverCert) && existsSync(paths.serverKey)) {
    return { ...(await loadPki(dataDir)), created: false };
  }
  await fs.mkdir(paths.dir, { recursive: true, mode: 0o700 });
  let caPem: string;
  let caKeyPem: string;
  if (existsSync(paths.caCert) && existsSync(paths.caKey)) {
    // A CA without a server certificate (e.g. a new scheduler host): keep the CA, issue the rest.
    caPem = await fs.readFile(paths.caCert, "utf8");
    caKeyPem = await fs.readFile(paths.caKey, "utf8");
  } else {
    ({ certPem: caPem, keyPem: caKeyPem } = await createCa());
    await writeSecret(paths.caKey, caKeyPem);
    await fs.writeFile(paths.caCert, caPem, { mode: 0o644 });
  }
  const server = await issueServerCertificate(splitPem(caPem)[0]!, caKeyPem, hosts);
  await writeSecret(paths.serverKey, server.keyPem);
  await fs.writeFile(paths.serverCert, server.certPem, { mode: 0o644 });
  return { ...assemble(caPem, caKeyPem, server.certPem, server.keyPem, paths), created: true };
}

/** Reads the cluster PKI of `<dataDir>/pki` (all four files must be there); throws if they do not fit together. */
export async function loadPki(dataDir: string): Promise<ClusterPki> {
  const paths = pkiPaths(dataDir);
  const [caPem, caKeyPem, serverCertPem, serverKeyPem] = await Promise.all([paths.caCert, paths.caKey, paths.serverCert, paths.serverKey].map((f) => fs.readFile(f, "utf8")));
  return assemble(caPem!, caKeyPem!, serverCertPem!, serverKeyPem!, paths);
}

/**
 * CA rotation, step 1 (`distx ca rotate`): a new CA, trusted beside the old one. ca.crt becomes
 * "new, old" and ca.key the new CA's key, so new node certificates (joins, and every renewal:
 * renewal moves nodes over) come from the new CA, and joins and renewals hand out both CAs. The
 * scheduler keeps serving its certificate from the old CA, which every agent and client already
 * trusts, until step 2. Running schedulers pick the change up by themselves (ClusterSecurity
 * watches the files). Refused while a rotation is under way (two CAs already).
 */
export async function rotateCa(dataDir: string): Promise<{ newCaPem: string; oldCaPem: string }> {
  const pki = await loadPki(dataDir);
  const cas = splitPem(pki.caPem);
  if (cas.length > 1) throw new Error(`a CA rotation is already under way (${pki.paths.caCert} holds ${cas.length} CAs): run \`distx ca retire-old\` first`);
  const next = await createCa();
  // The key first: a reader that sees the new ca.crt with the old key refuses the pair (assemble) and reads again later.
  await writeSecret(pki.paths.caKey, next.keyPem);
  await writePublic(pki.paths.caCert, `${next.certPem.trim()}\n${cas[0]!.trim()}\n`);
  return { newCaPem: next.certPem, oldCaPem: cas[0]! };
}

/**
 * CA rotation, step 2 (`distx ca retire-old`): the scheduler gets a certificate from the new CA
 * (same names as before), and ca.crt keeps only the new CA. From then on a certificate from the
 * old CA is refused, so do this once every agent has renewed (each renews at 2/3 of its
 * certificate's lifetime) and every client has the new ca.crt (the client profile points at it).
 */
export async function retireOldCa(dataDir: string): Promise<{ retiredCaPem: string }> {
  const pki = await loadPki(dataDir);
  const cas = splitPem(pki.caPem);
  if (cas.length < 2) throw new Error(`no CA rotation is under way (${pki.paths.caCert} holds one CA): \`distx ca rotate\` starts one`);
  const served = new X509Certificate(pki.serverCertPem);
  const names = (served.subjectAltName ?? "").split(/,\s*/).map((n) => n.replace(/^(DNS|IP Address):/, "")).filter((n) => n && !n.startsWith("URI:"));
  const server = await issueServerCertificate(pki.signingCaPem, pki.caKeyPem, names);
  // The served certificate before the bundle shrinks: while both CAs are trusted, either certificate verifies.
  await writeSecret(pki.paths.serverKey, server.keyPem);
  await writePublic(pki.paths.serverCert, server.certPem);
  await writePublic(pki.paths.caCert, pki.signingCaPem);
  return { retiredCaPem: cas.slice(1).join("") };
}

async function writePublic(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, text, { mode: 0o644 });
  await fs.rename(tmp, file);
}

const IP_PATTERN = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:.]*)$/;

export async function issueServerCertificate(caPem: string, caKeyPem: string, hosts: string[] = []): Promise<{ certPem: string; keyPem: string }> {
  const keys = await keyPair();
  const all = [...new Set(["localhost", "127.0.0.1", "::1", ...hosts.map((h) => h.replace(/^\[|\]$/g, ""))])];
  const cert = await issue({
    caPem,
    caKeyPem,
    publicKey: keys.publicKey,
    commonName: "distx-scheduler",
    dns: all.filter((h) => !IP_PATTERN.test(h)),
    ips: all.filter((h) => IP_PATTERN.test(h)),
    usage: "server",
    lifetimeMs: SERVER_LIFETIME_MS,
  });
  return { certPem: cert.toString("pem"), keyPem: keyToPem(keys.privateKey) };
}

/** Agent side: a fresh key pair and a CSR for it. The key stays with the agent. */
export async function createCsr(): Promise<{ csrPem: string; keyPem: string }> {
  const keys = await keyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: "CN=distx-agent", keys, signingAlgorithm: ALG });
  return { csrPem: csr.toString("pem"), keyPem: keyToPem(keys.privateKey) };
}

/** Bound on a CSR's size: it comes from an unauthenticated (token-only) caller. */
export const MAX_CSR_BYTES = 8192;

/**
 * Scheduler side: checks the CSR's self-signature (proof that the caller holds the key) and
 * issues a client certificate whose only identity is `distx-node:<nodeId>`; whatever names the
 * CSR asks for are ignored.
 */
export async function signNodeCsr(caPem: string, caKeyPem: string, csrPem: string, nodeId: string, lifetimeMs = NODE_LIFETIME_MS): Promise<{ certPem: string; serial: string; notAfterMs: number }> {
  if (Buffer.byteLength(csrPem) > MAX_CSR_BYTES) throw new Error(`the CSR is larger than ${MAX_CSR_BYTES} bytes`);
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (err) {
    throw new Error(`the CSR is not a PEM PKCS#10 request: ${(err as Error).message}`);
  }
  if (!(await csr.verify(crypto))) throw new Error("the CSR's signature does not verify");
  const alg = csr.publicKey.algorithm as EcKeyAlgorithm;
  if (alg.name !== "ECDSA" || alg.namedCurve !== "P-256") throw new Error("the CSR's key must be EC P-256");
  const cert = await issue({ caPem, caKeyPem, publicKey: csr.publicKey, commonName: nodeId, uris: [`${NODE_URI_PREFIX}${nodeId}`], usage: "client", lifetimeMs });
  return { certPem: cert.toString("pem"), serial: cert.serialNumber.toLowerCase(), notAfterMs: cert.notAfter.getTime() };
}

export interface CertInfo {
  serial: string;
  notBeforeMs: number;
  notAfterMs: number;
  nodeId: string | undefined;
}

export function certInfo(certPem: string | Buffer): CertInfo {
  const cert = new x509.X509Certificate(typeof certPem === "string" ? certPem : new Uint8Array(certPem));
  return { serial: cert.serialNumber.toLowerCase(), notBeforeMs: cert.notBefore.getTime(), notAfterMs: cert.notAfter.getTime(), nodeId: nodeIdOfCert(cert) };
}

function nodeIdOfCert(cert: x509.X509Certificate): string | undefined {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  for (const n of san?.names.items ?? []) {
    if (n.type === "url" && n.value.startsWith(NODE_URI_PREFIX)) {
      const id = n.value.slice(NODE_URI_PREFIX.length);
      if (NODE_ID_PATTERN.test(id)) return id;
    }
  }
  return undefined;
}

/** Serial numbers as Node's tls reports them (upper-case hex, leading zeros dropped) and as x509 does. */
export const normaliseSerial = (s: string): string => s.toLowerCase().replace(/^0+/, "");

/** The node id in a TLS peer certificate's subjectaltname string ("URI:distx-node:node-…"). */
export function nodeIdFromSubjectAltName(subjectaltname: string | undefined): string | undefined {
  for (const part of (subjectaltname ?? "").split(/,\s*/)) {
    if (!part.startsWith(`URI:${NODE_URI_PREFIX}`)) continue;
    const id = part.slice(4 + NODE_URI_PREFIX.length);
    if (NODE_ID_PATTERN.test(id)) return id;
  }
  return undefined;
}
