// How a client finds its credentials (docs/security.md): explicit options, then credentials a
// LocalCluster in this process registered for the address, then DISTX_CA / DISTX_TOKEN(_FILE),
// then the client profile <DISTX_HOME or ~/.distx>/client.json written by `distx init` / `distx up`.
// The token travels as `authorization: Bearer <token>` metadata, so grpcurl -H and Python work too.
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";

export interface Credentials {
  /** The cluster CA: PEM text or bytes, or a file name. */
  ca?: Buffer | string;
  token?: string;
  /** Plain-text gRPC, for a scheduler started with --insecure. */
  insecure?: boolean;
  /** Client certificate (agents, tools acting as a node). */
  keyPem?: string;
  certPem?: string;
}

export interface ClientProfile {
  scheduler: string;
  caFile: string;
  tokenFile: string;
}

const resolvers: ((address: string) => Credentials | undefined)[] = [];

/** Called by LocalCluster: clients created in this process for its schedulers use its CA and admin token by default. */
export function registerCredentialResolver(resolve: (address: string) => Credentials | undefined): () => void {
  resolvers.push(resolve);
  return () => void resolvers.splice(resolvers.indexOf(resolve), 1);
}

export const profileDir = (dir?: string): string => dir ?? (process.env.DISTX_HOME || path.join(homedir(), ".distx"));

export function readProfile(dir?: string): ClientProfile | undefined {
  const file = path.join(profileDir(dir), "client.json");
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, "utf8")) as ClientProfile;
}

const readText = (file: string) => readFileSync(file, "utf8").trim();

/** Fills in what `explicit` leaves out, from the sources above, for `address`. */
export function resolveCredentials(address: string, explicit: Credentials = {}): Credentials {
  if (explicit.insecure || /^(1|true|yes)$/i.test(process.env.DISTX_INSECURE ?? "")) return { insecure: true };
  const given = Object.fromEntries(Object.entries(explicit).filter(([, v]) => v !== undefined)) as Credentials;
  if (given.ca !== undefined && given.token !== undefined) return given;
  return { ...implicitCredentials(address), ...given };
}

function implicitCredentials(address: string): Credentials {
  for (const resolve of resolvers) {
    const registered = resolve(address);
    if (registered) return registered;
  }
  const env = process.env;
  const token = env.DISTX_TOKEN || (env.DISTX_TOKEN_FILE ? readText(env.DISTX_TOKEN_FILE) : undefined);
  const profile = readProfile();
  return {
    ...(profile ? { ca: profile.caFile, token: existsSync(profile.tokenFile) ? readText(profile.tokenFile) : undefined } : {}),
    ...(env.DISTX_CA ? { ca: env.DISTX_CA } : {}),
    ...(token ? { token } : {}),
  };
}

function caBytes(ca: Buffer | string): Buffer {
  if (Buffer.isBuffer(ca)) return ca;
  if (ca.includes("-----BEGIN CERTIFICATE-----")) return Buffer.from(ca);
  return readFileSync(ca);
}

/**
 * gRPC channel credentials: TLS verified against the cluster CA, with the bearer token on every
 * call. Without any CA the channel is plain text, which a secure scheduler refuses (a client
 * without the CA cannot connect), and which is right for one started with --insecure.
 */
export function channelCredentials(creds: Credentials): grpc.ChannelCredentials {
  if (creds.insecure || creds.ca === undefined) return grpc.credentials.createInsecure();
  const tls = grpc.credentials.createSsl(
    caBytes(creds.ca),
    creds.keyPem ? Buffer.from(creds.keyPem) : null,
    creds.certPem ? Buffer.from(creds.certPem) : null,
  );
  if (!creds.token) return tls;
  const header = `Bearer ${creds.token}`;
  const perCall = grpc.credentials.createFromMetadataGenerator((_params, done) => {
    const md = new grpc.Metadata();
    md.set("authorization", header);
    done(null, md);
  });
  return grpc.credentials.combineChannelCredentials(tls, perCall);
}
