// The cost of token authentication and the policy check per call: sequential unary calls
// (GetJob of one job) against two in-process schedulers, one with tokens and one --insecure,
// measured in alternating rounds in the same run so that machine load hits both alike.
// Run: npm run build:ts && node dist/bench/auth/run.js
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { DistributeXClient } from "../../client/index.js";
import { loadConfig, schedulerConfigSchema } from "../../common/config.js";
import { createLogger } from "../../common/logger.js";
import { builtKernelsDir } from "../../common/paths.js";
import { Scheduler } from "../../scheduler/scheduler.js";
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";

const ROUNDS = 10;
const CALLS = 300;

async function start(insecure: boolean) {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "distx-bench-auth-"));
  const config = loadConfig(schedulerConfigSchema, { section: "scheduler", env: {}, flags: { port: 0, logLevel: "silent", insecure, dataDir, drainGraceMs: 0 } });
  const scheduler = new Scheduler(config, createLogger("scheduler", "silent"));
  const address = await scheduler.start();
  const client = new DistributeXClient(address, insecure ? { token: null, insecure: true } : { tokenFile: path.join(dataDir, "admin.token"), ca: path.join(dataDir, "pki", "ca.crt") });
  const { kernelId } = await client.registerKernel(readFileSync(path.join(builtKernelsDir(), "saxpy.wasm")));
  const { jobId } = await client.submitJob({ kernelId, inputs: [Buffer.alloc(12)] });
  return { scheduler, client, jobId };
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

const secure = await start(false);
const open = await start(true);
const lat = { secure: [] as number[], insecure: [] as number[] };
const rate = { secure: [] as number[], insecure: [] as number[] };
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, s] of [["secure", secure], ["insecure", open]] as const) {
    const t0 = performance.now();
    for (let i = 0; i < CALLS; i++) {
      const a = performance.now();
      await s.client.getJob(s.jobId);
      if (r > 0) lat[name].push(performance.now() - a);
    }
    if (r > 0) rate[name].push(CALLS / ((performance.now() - t0) / 1000));
  }
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
for (const name of ["secure", "insecure"] as const) {
  console.log(`${name.padEnd(8)} p50 ${pct(lat[name], 50).toFixed(3)} ms  p99 ${pct(lat[name], 99).toFixed(3)} ms  ${mean(rate[name]).toFixed(0)} calls/s (sequential GetJob, ${lat[name].length} calls)`);
}
console.log(`added p50: ${(pct(lat.secure, 50) - pct(lat.insecure, 50)).toFixed(3)} ms; throughput ${(100 * (mean(rate.secure) / mean(rate.insecure) - 1)).toFixed(1)}%`);
for (const s of [secure, open]) {
  s.client.close();
  await s.scheduler.stop(0);
}

// The guard alone (scheduler/auth/policy.ts guardService: authenticate, authorize, run the
// handler) with a token verified a moment ago, on a call object: what it adds per RPC, no gRPC.
{
  const { guardService } = await import("../../scheduler/auth/policy.js");
  const { MemoryTokenStore } = await import("../../scheduler/auth/token-stores.js");
  const { issueToken } = await import("../../scheduler/auth/tokens.js");
  const { Revocations } = await import("../../scheduler/auth/revocations.js");
  const { VerifiedTokens } = await import("../../scheduler/auth/authenticate.js");
  const store = MemoryTokenStore.inMemory();
  const { token } = await issueToken(store, { kind: "api", role: "admin", tenant: "default" });
  const ctx = { insecure: false, tokens: store, revocations: Revocations.inMemory(), verified: new VerifiedTokens() };
  const guarded = guardService({ GetJob: {} } as unknown as grpc.ServiceDefinition, { GetJob: (_call: unknown, cb: (e: null, r: object) => void) => cb(null, {}) }, ctx, { authorize: () => undefined });
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  const call = { metadata, getAuthContext: () => ({}), cancelled: false, emit: () => true };
  const once = () => new Promise<void>((resolve) => guarded.GetJob(call, () => resolve()));
  for (let i = 0; i < 20_000; i++) await once();
  const perCall: number[] = [];
  for (let r = 0; r < 5; r++) {
    const n = 100_000;
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) await once();
    const c = process.cpuUsage(c0);
    perCall.push((c.user + c.system) / n);
  }
  console.log(`guard alone (cached token): ${pct(perCall, 50).toFixed(2)} µs CPU per call (median of 5 × 100,000)`);
}
