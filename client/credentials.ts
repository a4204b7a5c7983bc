// How a client finds its credentials (docs/security.md).
// The CA: explicit option, then a LocalCluster in this process that registered its address, then
// env DISTX_CA, then the client profile <DISTX_HOME or ~/.distx>/client.json ("caFile"), then (for
// a scheduler on loopback) the data dir's own pki/ca.crt.
// The API token, first match wins:
//   1. the `token` / `tokenFile` option (CLI: --token / --token-file);
//   2. a cluster this process started (LocalCluster: `distx demo`, tests) registered for its address;
//   3. env DISTX_TOKEN, then DISTX_TOKEN_FILE;
//   4. the client profile's "tokenFile", then <that dir>/admin.token (written by the scheduler's
//      first start and by `distx up`) — only for the profile's own scheduler or one on this
//      machine (loopback), so a local admin token is never sent to whatever remote address a
//      command happens to be given.
// The token travels as gRPC metadata `authorization: Bearer <token>`, so grpcurl -H and Python work too.
import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { secureChannel } from "../common/secure-channel.js";

export interface Credentials {
  /** The cluster CA: PEM text or bytes, or a file name. */
  ca?: Buffer | string;
  /** API token; null: send none. */
  token?: string | null;
  /** A file holding the token (one line). */
  tokenFile?: string;
  /** Plain-text gRPC, for a scheduler started with --insecure. */
  insecure?: boolean;
  /** Client certificate (agents, tools acting as a node). */
  keyPem?: string;
  certPem?: string;
}

export interface ClientProfile {
  scheduler?: string;
  caFile?: string;
  tokenFile?: string;
}

const resolvers: ((address: string) => Credentials | undefined)[] = [];

/** Called by LocalCluster: clients created in this process for its schedulers use its CA and admin token by default. */
export function registerCredentialResolver(resolve: (address: string) => Credentials | undefined): () => void {
  resolvers.push(resolve);
  return () => void resolvers.splice(resolvers.indexOf(resolve), 1);
}

/** A token file is one line; anything much longer is not one. */
const MAX_TOKEN_FILE_BYTES = 4096;

export const clientDataDir = (env: NodeJS.ProcessEnv = process.env): string => path.resolve(env.DISTX_HOME || path.join(os.homedir(), ".distx"));

export function readProfile(dir = clientDataDir()): ClientProfile | undefined {
  let text: string;
  try {
    text = readFileSync(path.join(dir, "client.json"), "utf8");
  } catch {
    return undefined;
  }
  try {
    const p = JSON.parse(text) as ClientProfile;
    return typeof p === "object" && p !== null ? p : undefined;
  } catch (err) {
    throw new Error(`${path.join(dir, "client.json")} is not valid JSON: ${(err as Error).message}`);
  }
}

/** Reads a token file; undefined when it does not exist. */
export function readTokenFile(file: string, required = false): string | undefined {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`cannot read token file ${file}: ${(err as Error).message}`);
  }
  if (buf.byteLength > MAX_TOKEN_FILE_BYTES) throw new Error(`token file ${file} is ${buf.byteLength} bytes; a token file holds one token`);
  const token = buf.toString("utf8").trim();
  return token || undefined;
}

const localClusters = new Map<string, string>();

/** A cluster started by this process: clients of `address` use the token in `tokenFile`. */
export function rememberClusterToken(address: string, tokenFile: string): void {
  localClusters.set(address, tokenFile);
}

export function forgetClusterToken(address: string): void {
  localClusters.delete(address);
}

/** 127.0.0.1:7070, localhost:7070, [::1]:7070 */
export function isLoopbackAddress(address: string): boolean {
  const host = address.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1").toLowerCase();
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export function resolveToken(address: string, explicit: { token?: string | null; tokenFile?: string } = {}, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (explicit.token === null) return undefined; // explicitly none
  if (explicit.token) return explicit.token;
  if (explicit.tokenFile) return readTokenFile(explicit.tokenFile, true);
  const started = localClusters.get(address);
  if (started) return readTokenFile(started);
  if (env.DISTX_TOKEN) return env.DISTX_TOKEN.trim();
  if (env.DISTX_TOKEN_FILE) return readTokenFile(env.DISTX_TOKEN_FILE, true);
  const dir = clientDataDir(env);
  const profile = readProfile(dir);
  const local = isLoopbackAddress(address);
  if (profile?.tokenFile && (local || profile.scheduler === address)) {
    const t = readTokenFile(path.resolve(dir, profile.tokenFile));
    if (t) return t;
  }
  return local ? readTokenFile(path.join(dir, "admin.token")) : undefined;
}

/** The data dir holding the client profile. */
export const profileDir = (dir?: string): string => dir ?? clientDataDir();

/** Fills in what `explicit` leaves out, from the sources above, for `address`. */
/**
 * Credentials for a cluster named by several addresses (an active scheduler and its standbys):
 * one CA and one token for all of them, found through whichever address something registered
 * them for, so that a first address that is down (or unknown here) does not leave the client
 * without the CA for the others.
 */
export function resolveClusterCredentials(addresses: string[], explicit: Credentials = {}): Credentials {
  const known = addresses.find((a) => resolvers.some((resolve) => resolve(a) !== undefined));
  return resolveCredentials(known ?? addresses[0]!, explicit);
}

export function resolveCredentials(address: string, explicit: Credentials = {}): Credentials {
  if (explicit.insecure || /^(1|true|yes)$/i.test(process.env.DISTX_INSECURE ?? "")) return { insecure: true };
  const given = Object.fromEntries(Object.entries(explicit).filter(([, v]) => v !== undefined)) as Credentials;
  let registered: Credentials | undefined;
  for (const resolve of resolvers) {
    registered = resolve(address);
    if (registered) break;
  }
  if (registered?.insecure && given.ca === undefined) return { insecure: true };
  const profile = readProfile();
  // A scheduler on this machine that was started without `distx init` keeps its CA in the data dir.
  const localCa = path.join(clientDataDir(), "pki", "ca.crt");
  const ca = given.ca ?? registered?.ca ?? process.env.DISTX_CA ?? profile?.caFile ?? (isLoopbackAddress(address) && existsSync(localCa) ? localCa : undefined);
  const token =
    given.token === null
      ? undefined
      : given.token || (given.tokenFile ? readTokenFile(given.tokenFile, true) : undefined) || (registered?.token ?? undefined) || resolveToken(address);
  return { ...given, ...(ca !== undefined ? { ca } : {}), ...(token ? { token } : { token: null }) };
}

function caBytes(ca: Buffer | string): Buffer {
  if (Buffer.isBuffer(ca)) return ca;
  if (ca.includes("-----BEGIN CERTIFICATE-----")) return Buffer.from(ca);
  if (!existsSync(ca)) throw new Error(`CA file ${ca} does not exist: pass --ca or DISTX_CA, or run \`distx init\``);
  return readFileSync(ca);
}

/**
 * gRPC channel credentials: TLS verified against the cluster CA. Without any CA the channel is
 * plain text, which a secure scheduler refuses (a client without the CA cannot connect), and
 * which is right for one started with --insecure. The token is not part of the channel: the
 * client sends it as call metadata, so it works on both.
 */
export function channelCredentials(creds: Credentials): grpc.ChannelCredentials {
  if (creds.insecure || creds.ca === undefined) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(caBytes(creds.ca), creds.keyPem ? Buffer.from(creds.keyPem) : null, creds.certPem ? Buffer.from(creds.certPem) : null);
}

/**
 * As channelCredentials, for one address, with the channel options that go with them: a
 * scheduler named by IP is verified against the certificate's IP SANs without sending the IP as
 * the TLS server name (common/secure-channel.ts). What the typed client and the CLI use.
 */
export function channelFor(address: string, creds: Credentials): { credentials: grpc.ChannelCredentials; options: grpc.ChannelOptions } {
  if (creds.insecure || creds.ca === undefined) return { credentials: grpc.credentials.createInsecure(), options: {} };
  return secureChannel(address, { ca: caBytes(creds.ca), key: creds.keyPem ? Buffer.from(creds.keyPem) : null, cert: creds.certPem ? Buffer.from(creds.certPem) : null });
}
