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

const ROUNDS = 10;
const CALLS = 300;

async function start(insecure: boolean) {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "distx-bench-auth-"));
  const config = loadConfig(schedulerConfigSchema, { section: "scheduler", env: {}, flags: { port: 0, logLevel: "silent", insecure, dataDir, drainGraceMs: 0 } });
  const scheduler = new Scheduler(config, createLogger("scheduler", "silent"));
  const address = await scheduler.start();
  const client = new DistributeXClient(address, insecure ? { token: null } : { tokenFile: path.join(dataDir, "admin.token") });
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
