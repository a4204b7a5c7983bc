/**
 * Placement with and without the forecast on a real local cluster (issue #14): the same job
 * stream, once with `--placement forecast` and once with `--placement finish-time`, alternating,
 * `--runs` times each, with periodic background load injected on one agent's core.
 *
 *   npm run bench:placement-live -- [--runs 3] [--period-s 20] [--on-s 8] [--warmup-s 45]
 *     [--jobs-s 80] [--task-ms 1500] [--interval-ms 1500] [--heartbeat-ms 250]
 *     [--burner-nice 10] [--agent-nice 19] [--out bench/results]
 *
 * Each run starts a fresh scheduler and two 1-worker agents (real processes, loopback gRPC, no
 * calibration: both nodes look alike), pins agent-0 to core 0 and everything else (agent-1, the
 * scheduler, this process) to core 1 with taskset, and starts a burner on core 0: a process
 * spinning `--on-s` of every `--period-s` (phase from the wall clock), at `--burner-nice` (the
 * host's own work; below this process's nice needs root), while the agents run at `--agent-nice`
 * (niced: they yield to it, and register so). Nice 10 against 19 leaves an agent about 12 % of
 * the core (CFS weights 110 : 15), not the ≈ 1/70 of nice 0, so that its session's heartbeats
 * still get through (at nice 0 its main thread starved and the scheduler declared it lost). The load models get `--warmup-s` of heartbeats,
 * two periods or more, while a steady stream of one-task montecarlo_pi jobs (each about
 * `--task-ms` on this machine, one every `--interval-ms` on average, seeded arrivals) runs
 * throughout; the jobs submitted in the `--jobs-s` after the warm-up are measured (JCT =
 * submit to final state). The job stream and the burner are the same in every run.
 * Writes <out>/placement-live.{json,md}.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { DistributeXClient } from "../../client/index.js";
import { LocalCluster } from "../../cli/local-cluster.js";
import { repoRoot } from "../../common/paths.js";
import { getExampleKernel, mulberry32 } from "../../kernels/reference/index.js";

const argv = process.argv.slice(2);
const num = (name: string, dflt: number) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const o = {
  runs: num("--runs", 3),
  periodS: num("--period-s", 20),
  onS: num("--on-s", 8),
  warmupS: num("--warmup-s", 45),
  jobsS: num("--jobs-s", 80),
  taskMs: num("--task-ms", 1500),
  intervalMs: num("--interval-ms", 1500),
  heartbeatMs: num("--heartbeat-ms", 250),
  burnerNice: num("--burner-nice", 10),
  agentNice: num("--agent-nice", 19),
  seed: num("--seed", 1),
};
const root = repoRoot();
const outDir = (() => {
  const i = argv.indexOf("--out");
  return i >= 0 ? argv[i + 1]! : path.join(root, "bench", "results");
})();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const uptime = () => spawnSync("uptime", { encoding: "utf8" }).stdout.trim();

function pin(pid: number, cpu: number): void {
  spawnSync("taskset", ["-a", "-p", "-c", String(cpu), String(pid)], { stdio: "ignore" });
}
/** Every thread of `pid` at `nice` (nice is per thread on Linux). */
function renice(pid: number, nice: number): void {
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      os.setPriority(Number(tid), nice);
    } catch {
      // a thread that ended meanwhile
    }
  }
}

/** The background: spins on core 0 for onS of every periodS, phase from the wall clock, so every run meets the same pattern relative to its start. */
function startBurner(): ChildProcess {
  const P = o.periodS * 1000;
  const ON = o.onS * 1000;
  const code = `const P=${P},ON=${ON};const tick=()=>{const t=Date.now()%P;if(t<ON){const end=Date.now()+(ON-t);while(Date.now()<end){}setTimeout(tick,0)}else setTimeout(tick,P-t)};tick();`;
  const child = spawn("taskset", ["-c", "0", process.execPath, "-e", code], { stdio: "ignore" });
  setTimeout(() => child.pid && renice(child.pid, o.burnerNice), 50);
  return child;
}

interface RunResult {
  policy: string;
  order: number;
  jobs: number;
  failures: number;
  p50JctMs: number;
  p95JctMs: number;
  meanJctMs: number;
  /** Share of the measured tasks that ran on agent-0 (the loaded core). */
  onLoadedAgent: number;
  uptimeBefore: string;
  uptimeAfter: string;
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))]! : Number.NaN;
};

async function oneRun(policy: "forecast" | "finish-time", order: number, samples: { value: number }): Promise<RunResult> {
  const uptimeBefore = uptime();
  const cluster = new LocalCluster({
    agents: 0,
    workersPerAgent: 1,
    logs: path.join(root, "test-output", "logs", `bench-placement-live-${Date.now()}`),
    schedulerArgs: ["--placement", policy, "--heartbeat-interval-ms", String(o.heartbeatMs), "--agent-timeout-ms", "15000"],
    env: { DISTX_RESULT_CACHE_TTL_S: "0" },
  });
  const address = await cluster.start();
  const agents = [0, 1].map((i) => {
    const p = cluster.startAgent(i, ["--labels", `agent=a${i}`, "--no-calibrate", "--gpu", "off"]);
    renice(p.child.pid!, o.agentNice); // before it profiles the host: it registers niced
    return p;
  });
  const client = new DistributeXClient(address);
  let burner: ChildProcess | undefined;
  // Interrupted (Ctrl-C, a timeout): leave no agent, scheduler or burner behind.
  const kill = () => {
    burner?.kill("SIGKILL");
    for (const p of cluster.processes) p.child.kill("SIGKILL");
    process.exit(130);
  };
  process.once("SIGINT", kill).once("SIGTERM", kill);
  try {
    for (let t = 0; (await client.listNodes()).length < 2; t++) {
      if (t > 300) throw new Error("agents did not register");
      await sleep(200);
    }
    const nodes = await client.listNodes();
    const loaded = nodes.find((n) => n.profile?.labels?.agent === "a0")!.nodeId;
    pin(agents[0]!.child.pid!, 0);
    renice(agents[0]!.child.pid!, o.agentNice);
    pin(agents[1]!.child.pid!, 1);
    renice(agents[1]!.child.pid!, o.agentNice);
    pin(cluster.processes.find((p) => p.name === "scheduler")!.child.pid!, 1);
    pin(process.pid, 1);
    const kernel = getExampleKernel("montecarlo_pi");
    const { kernelId } = await client.registerKernelFile(path.join(root, "build", "kernels", "montecarlo_pi.wasm"));
    if (samples.value === 0) {
      // Size tasks to about taskMs on this machine (agent-1's quiet core), once for all runs.
      const probe = 20_000_000;
      let ms = Number.POSITIVE_INFINITY;
      for (let i = 0; i < 3; i++) {
        const r = await client.run({ kernelId, inputs: kernel.makeTasks({ tasks: 1, size: probe, seed: 99 + i }), name: "size" });
        ms = Math.min(ms, Math.max(1, Number(r.results[0]!.runMs))); // the least disturbed of three
      }
      samples.value = Math.round((probe * o.taskMs) / ms);
      console.error(`task size: ${samples.value} samples (${ms} ms for ${probe})`);
    }
    burner = startBurner();
    const t0 = Date.now();
    const measureFrom = t0 + o.warmupS * 1000;
    const end = measureFrom + o.jobsS * 1000;
    const rand = mulberry32(o.seed);
    const measured: Promise<{ jct: number; node: string } | undefined>[] = [];
    let failures = 0;
    let k = 0;
    while (Date.now() < end) {
      const submitAt = Date.now();
      const counted = submitAt >= measureFrom;
      const inputs = kernel.makeTasks({ tasks: 1, size: samples.value, seed: ++k });
      const job = (async () => {
        try {
          const { jobId } = await client.submitJob({ kernelId, inputs });
          const j = await client.waitForJob(jobId, () => undefined, { finalOnly: true });
          if (j.state !== "JOB_STATE_SUCCEEDED") throw new Error(j.state);
          const node = counted ? ((await client.getResults(jobId))[0]?.nodeId ?? "") : "";
          return { jct: Date.now() - submitAt, node };
        } catch (err) {
          failures++;
          console.error(`job failed: ${(err as Error).message}`);
          return undefined;
        }
      })();
      if (counted) measured.push(job);
      // Exponential inter-arrival times (seeded; mulberry32 gives a uint32): the same stream in every run.
      await sleep(-Math.log(1 - rand() / 2 ** 32) * o.intervalMs);
      if (measured.length > (o.jobsS * 4000) / o.intervalMs) throw new Error("job stream ran away");
    }
    // A job still unfinished 120 s after the stream ends counts as failed (and stops the wait).
    const late = new Promise<undefined>((r) => setTimeout(() => r(undefined), 120_000).unref());
    const settled = await Promise.all(measured.map((j) => Promise.race([j, late])));
    failures = settled.filter((x) => !x).length; // of the measured jobs
    const done = settled.filter((x): x is { jct: number; node: string } => !!x);
    const jcts = done.map((d) => d.jct);
    return {
      policy,
      order,
      jobs: done.length,
      failures,
      p50JctMs: quantile(jcts, 0.5),
      p95JctMs: quantile(jcts, 0.95),
      meanJctMs: jcts.reduce((s, x) => s + x, 0) / Math.max(1, jcts.length),
      onLoadedAgent: done.filter((d) => d.node === loaded).length / Math.max(1, done.length),
      uptimeBefore,
      uptimeAfter: uptime(),
    };
  } finally {
    process.off("SIGINT", kill).off("SIGTERM", kill);
    burner?.kill("SIGKILL");
    client.close();
    await cluster.stop(5000);
    spawnSync("taskset", ["-a", "-p", "-c", `0-${os.availableParallelism() - 1}`, String(process.pid)], { stdio: "ignore" });
  }
}

const results: RunResult[] = [];
const samples = { value: 0 };
for (let r = 0; r < o.runs; r++) {
  // Alternate which goes first, so a drift in the machine's load does not favour one policy.
  const pair = r % 2 === 0 ? (["forecast", "finish-time"] as const) : (["finish-time", "forecast"] as const);
  for (const policy of pair) {
    const res = await oneRun(policy, results.length, samples);
    results.push(res);
    console.error(`${policy}: p95 ${(res.p95JctMs / 1000).toFixed(2)} s, p50 ${(res.p50JctMs / 1000).toFixed(2)} s, ${res.jobs} jobs, ${(res.onLoadedAgent * 100).toFixed(0)} % on the loaded agent; ${res.uptimeAfter}`);
  }
}
const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
const of = (p: string) => results.filter((r) => r.policy === p);
const f = mean(of("forecast").map((r) => r.p95JctMs));
const nf = mean(of("finish-time").map((r) => r.p95JctMs));
const pairs = Array.from({ length: o.runs }, (_, i) => results[2 * i]!).map((a, i) => {
  const b = results[2 * i + 1]!;
  const [fr, nr] = a.policy === "forecast" ? [a, b] : [b, a];
  return fr.p95JctMs / nr.p95JctMs;
});
const machine = { cpu: os.cpus()[0]?.model ?? "unknown", logicalCores: os.cpus().length, node: process.version };
const summary = { generatedAt: new Date().toISOString(), command: `npm run bench:placement-live -- ${argv.join(" ")}`.trim(), machine, options: o, taskSamples: samples.value, results, p95: { forecast: f, finishTime: nf, ratio: f / nf, pairRatios: pairs } };
mkdirSync(outDir, { recursive: true });
writeFileSync(path.join(outDir, "placement-live.json"), JSON.stringify(summary, null, 2) + "\n");
const s = (ms: number) => (ms / 1000).toFixed(2);
const md = [
  "# Placement live: forecast vs finish-time on a real cluster",
  "",
  `Command: \`${summary.command}\` · ${summary.generatedAt} · ${machine.cpu}, ${machine.logicalCores} logical cores, Node ${machine.node}.`,
  "",
  `Scheduler + 2 one-worker agents (loopback gRPC, no calibration), agent-0 pinned to core 0 with a burner there (${o.onS} s on every ${o.periodS} s, nice ${o.burnerNice}), agent-1 + scheduler + client on core 1; agents at nice ${o.agentNice}. Heartbeats ${o.heartbeatMs} ms; ${o.warmupS} s warm-up; one-task montecarlo_pi jobs (${samples.value} samples ≈ ${o.taskMs} ms), one per ${o.intervalMs} ms on average (seeded), measured over ${o.jobsS} s. Runs alternate; each starts a fresh cluster.`,
  "",
  "| run | policy | jobs | p50 JCT (s) | p95 JCT (s) | mean JCT (s) | on loaded agent | failures | uptime after |",
  "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
  ...results.map((r) => `| ${r.order + 1} | ${r.policy} | ${r.jobs} | ${s(r.p50JctMs)} | ${s(r.p95JctMs)} | ${s(r.meanJctMs)} | ${(r.onLoadedAgent * 100).toFixed(0)} % | ${r.failures} | ${r.uptimeAfter.replace(/^.*load average: /, "load ")} |`),
  "",
  `p95 JCT, mean over runs: forecast ${s(f)} s, finish-time ${s(nf)} s, ratio forecast / finish-time **${(f / nf).toFixed(3)}** (per pair: ${pairs.map((x) => x.toFixed(3)).join(", ")}).`,
  "",
].join("\n");
writeFileSync(path.join(outDir, "placement-live.md"), md);
console.log(md);
