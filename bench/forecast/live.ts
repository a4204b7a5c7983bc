/**
 * The live distx_forecast_error_ratio on a real local cluster under bursty load.
 *
 *   npm run bench:forecast-live -- [--seconds 360] [--seed 1] [--kafka] [--pin-agents] [--record FILE] [--out FILE]
 *
 * Starts a scheduler and two 1-worker agents as separate processes through the CLI (as
 * bench/queue does; --kafka: Kafka bus + Redis state from DISTX_TEST_KAFKA / DISTX_TEST_REDIS),
 * drives it with bursts of montecarlo_pi jobs separated by idle gaps (seeded, live-load.ts: burst
 * 6–30 s at one or two jobs in flight, gap 4–30 s; the phases are written out), scrapes the scheduler's /metrics every 10 s and
 * prints the gauge over time. The scheduler records every heartbeat (DISTX_LOAD_RECORD_FILE);
 * at the end the recording is replayed through this build's live forecaster settings (fed the
 * heartbeat inputs, as the scheduler does), the same without inputs, and the previous ones (the
 * baseline, same series), each scored like the gauge, whole and split 70/30
 * by time (bench/forecast/live-tune.ts chooses settings on the first 70 % of a recording), and
 * through this build's settings with the naive gate on (LIVE_GATED_FORECASTER, same series).
 * --pin-agents: agent i (all its threads) is pinned to core i as soon as the cluster is up
 * (taskset -a, as test/e2e/placement.test.ts does), so each node's utilisation is its own core,
 * as with one agent per host; the scheduler and this process stay unpinned. Written to the JSON.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import os from "node:os";
import { DistributeXClient } from "../../client/index.js";
import { LocalCluster } from "../../cli/local-cluster.js";
import { repoRoot } from "../../common/paths.js";
import { getExampleKernel } from "../../kernels/reference/index.js";
import { UTILIZATION_FORECASTER, UTILIZATION_INPUTS } from "../../scheduler/placement/load-model.js";
import { loadPlan, type LoadPhase } from "./live-load.js";
import { LIVE_GATED_FORECASTER, LIVE_PREVIOUS_FORECASTER, readRecording, replayScore, splitTime } from "./live-replay.js";

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const seconds = Number(opt("--seconds") ?? 360);
const seed = Number(opt("--seed") ?? 1);
const kafka = argv.includes("--kafka");
const pinAgents = argv.includes("--pin-agents");
if (pinAgents && os.availableParallelism() < 2) throw new Error("--pin-agents needs a core per agent (2)");
const size = Number(opt("--size") ?? 300_000_000);
const root = repoRoot();
const record = path.resolve(opt("--record") ?? path.join(root, "test-output", `forecast-live-${Date.now()}.ndjson`));
mkdirSync(path.dirname(record), { recursive: true });
rmSync(record, { force: true });

const env: NodeJS.ProcessEnv = { ...process.env, DISTX_LOAD_RECORD_FILE: record };
const schedulerArgs: string[] = [];
if (kafka) {
  const brokers = process.env.DISTX_TEST_KAFKA;
  const redis = process.env.DISTX_TEST_REDIS;
  if (!brokers || !redis) throw new Error("--kafka needs DISTX_TEST_KAFKA and DISTX_TEST_REDIS");
  const prefix = `fclive${Date.now()}`;
  schedulerArgs.push("--bus", "kafka", "--state", "redis", "--kafka-brokers", brokers, "--kafka-topic-prefix", prefix, "--redis-url", redis, "--redis-prefix", `${prefix}:`);
}
const cluster = new LocalCluster({
  agents: 2,
  workersPerAgent: 1,
  logs: path.join(root, "test-output", "logs", "bench-forecast-live"),
  env,
  schedulerArgs,
  agentArgs: () => ["--no-calibrate", "--gpu", "off"],
});

const ratioOf = (text: string): number => {
  const m = /^distx_forecast_error_ratio (\S+)$/m.exec(text);
  return m ? Number(m[1]) : Number.NaN;
};

/** Pins every thread of `pid` to `core` (threads started later inherit it); returns each thread's allowed CPUs, as read back. */
function pin(pid: number, core: number): string[] {
  const r = spawnSync("taskset", ["-a", "-p", "-c", String(core), String(pid)], { stdio: "ignore" });
  if (r.status !== 0) throw new Error(`taskset could not pin pid ${pid} to core ${core}`);
  const lists = readdirSync(`/proc/${pid}/task`).map((tid) => /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8"))?.[1] ?? "?");
  return [...new Set(lists)];
}

const address = await cluster.start();
const pinned = pinAgents
  ? cluster.processes
      .filter((p) => p.name.startsWith("agent-"))
      .map((p) => {
        const core = Number(p.name.slice("agent-".length));
        return { agent: p.name, pid: p.child.pid!, core, threadsAllowed: pin(p.child.pid!, core) };
      })
  : null;
if (pinned) console.error(`pinned: ${pinned.map((p) => `${p.agent}→core ${p.core} (threads on ${p.threadsAllowed.join("/")})`).join(", ")}`);
const admin = await cluster.adminAddress("scheduler");
const client = new DistributeXClient(address);
const samples: { s: number; ratio: number; load1: number }[] = [];
const t0 = Date.now();
let jobs = 0;
let failures = 0;
const phases: ({ s: number } & LoadPhase)[] = [];
try {
  const { kernelId } = await client.registerKernelFile(path.join(root, "build", "kernels", "montecarlo_pi.wasm"));
  const kernel = getExampleKernel("montecarlo_pi");
  const scrape = setInterval(() => {
    void fetch(`http://${admin}/metrics`)
      .then((r) => r.text())
      .then((t) => {
        const s = { s: Math.round((Date.now() - t0) / 1000), ratio: ratioOf(t), load1: os.loadavg()[0]! };
        samples.push(s);
        console.error(`t=${s.s}s ratio=${s.ratio.toFixed(3)} load1=${s.load1.toFixed(2)} jobs=${jobs} failed=${failures}`);
      })
      .catch(() => undefined);
  }, 10_000);
  const plan = loadPlan(seed);
  const end = t0 + seconds * 1000;
  const runJob = async () => {
    try {
      const inputs = kernel.makeTasks({ tasks: 2, size, seed: jobs + 1 });
      const { jobId } = await client.submitJob({ kernelId, inputs });
      await client.waitForJob(jobId, () => undefined, { finalOnly: true });
      jobs++;
    } catch (err) {
      // The load is what matters here, not one job: count it and go on.
      failures++;
      console.error(`job failed: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  };
  while (Date.now() < end) {
    const phase = plan.next().value as LoadPhase;
    const burstEnd = Math.min(end, Date.now() + phase.burstS * 1000);
    phases.push({ s: Math.round((Date.now() - t0) / 1000), ...phase });
    await Promise.all(
      Array.from({ length: phase.inFlight }, async () => {
        while (Date.now() < burstEnd) await runJob();
      }),
    );
    await new Promise((r) => setTimeout(r, Math.min(phase.gapS * 1000, Math.max(0, end - Date.now()))));
  }
  await new Promise((r) => setTimeout(r, 10_500));
  clearInterval(scrape);
} finally {
  client.close();
  await cluster.stop();
}

const recs = readRecording(record);
const stepMs = 1000;
const split = splitTime(recs, 0.7);
// As the scheduler's load model does: the utilisation forecaster is fed UTILIZATION_INPUTS.
const current = replayScore(recs, stepMs, UTILIZATION_FORECASTER, split, Number.POSITIVE_INFINITY, UTILIZATION_INPUTS);
const withoutInputs = replayScore(recs, stepMs, UTILIZATION_FORECASTER, split);
const previous = replayScore(recs, stepMs, LIVE_PREVIOUS_FORECASTER, split);
const gated = replayScore(recs, stepMs, LIVE_GATED_FORECASTER, split, Number.POSITIVE_INFINITY, UTILIZATION_INPUTS);
const last = samples.filter((s) => Number.isFinite(s.ratio)).at(-1);
const summary = {
  command: `bench/forecast/live.ts ${argv.join(" ")}`.trim(),
  seconds,
  seed,
  bus: kafka ? "kafka+redis" : "memory",
  // null: agents unpinned (each reports the whole host's CPU); else agent i on core i.
  pinned,
  jobs,
  failures,
  heartbeats: recs.length,
  record: path.relative(root, record),
  liveGaugeLast: last?.ratio ?? Number.NaN,
  liveGauge: samples,
  phases,
  loadavg: os.loadavg(),
  replay: { current, withoutInputs, previous, gated, gateSettings: LIVE_GATED_FORECASTER.model },
};
console.log(JSON.stringify(summary, null, 2));
const out = opt("--out");
if (out) writeFileSync(out, JSON.stringify(summary, null, 2) + "\n");
