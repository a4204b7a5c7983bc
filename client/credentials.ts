// Where a client's API token comes from, first match wins:
//   1. the `token` / `tokenFile` option (CLI: --token / --token-file);
//   2. a cluster this process started (LocalCluster: `distx demo`, tests) registered for its address;
//   3. env DISTX_TOKEN, then DISTX_TOKEN_FILE;
//   4. the client profile <DISTX_HOME or ~/.distx>/client.json ("tokenFile"), then <that dir>/admin.token
//      (written by the scheduler's first start and by `distx up`) — only for the profile's own
//      scheduler or one on this machine (loopback), so a local admin token is never sent to
//      whatever remote address a command happens to be given.
// The token travels as gRPC metadata `authorization: Bearer <token>`.
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export interface ClientProfile {
  scheduler?: string;
  caFile?: string;
  tokenFile?: string;
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
