// Queue bench: end-to-end throughput (tasks/s) and latency (submit → result recorded, p50/p99)
// for no-op tasks and a small kernel, on the embedded backends and on Kafka+Redis, with BullMQ
// on the same Redis doing the same no-op work as the same-run baseline.
// Run: eval "$(scripts/test-services.sh)" && npm run bench:queue   (writes bench/results/queue.{json,md})
import { keptNotes } from "./kept-notes.js";
import { readdirSync, readFileSync } from "node:fs";
import { readFile, writeFile, mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Queue, QueueEvents, Worker } from "bullmq";
import { DistributeXClient } from "../../client/index.js";
import { LocalCluster } from "../../cli/local-cluster.js";
import { repoRoot } from "../../common/paths.js";
import { fileURLToPath } from "node:url";
import { saxpyInput } from "../../kernels/reference/index.js";
import { ECHO_SERVICE } from "./tls-echo-server.js";
import { compareBuilds, sealedAssignments, signedEvents } from "./build-cost.js";

const TASKS = Number(process.env.BENCH_TASKS ?? 40_000);
const SAXPY_TASKS = Number(process.env.BENCH_SAXPY_TASKS ?? 6000);
const TLS_LATENCY_REPEATS = Number(process.env.BENCH_TLS_LATENCY_REPEATS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** Jobs of one task each, one after another, for the latency at rest (after 50 of warm-up). */
const SEQUENTIAL = Number(process.env.BENCH_SEQUENTIAL ?? 300);
const kafka = process.env.DISTX_TEST_KAFKA ?? "127.0.0.1:9092";
const redisUrl = process.env.DISTX_TEST_REDIS ?? "redis://127.0.0.1:6379";

interface Row {
  system: string;
  work: string;
  tasks: number;
  seconds: number;
  tasksPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** tasks/s of every round, when the row is the median of several. */
  rounds?: number[];
  /** Whole-machine CPU time (user + system + irq, every process: broker, Redis, client included) per 1,000 tasks. */
  cpuMsPer1k: number;
  /** The same, split by process (user + system of each, threads included), ms per 1,000 tasks. */
  cpuByProcess?: Record<string, number>;
  /** Kafka: records on the task-events topic after the run, warm-up included (one signature each in a secure cluster). */
  eventRecords?: number;
  /** Kafka: records on the assignments topic after the run, warm-up included (one seal each in a secure cluster). */
  assignmentRecords?: number;
}

/** Records written to `<prefix>.<topic>` so far (the sum of its partitions' end offsets). */
async function taskEventRecords(prefix: string, topic = "task-events"): Promise<number> {
  const { Kafka, logLevel } = await import("kafkajs");
  const admin = new Kafka({ clientId: "bench-offsets", brokers: kafka.split(","), logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(`${prefix}.${topic}`)).reduce((sum, p) => sum + Number(p.high), 0);
  } finally {
    await admin.disconnect();
  }
}

/** Busy CPU time of the whole machine so far, ms (from /proc/stat; steal and idle excluded). */
function machineBusyMs(): number {
  try {
    const [user, nice, system, , , irq, softirq] = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    return ((user! + nice! + system! + irq! + softirq!) * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return NaN;
  }
}

/** User + system CPU time so far, ms, from a /proc stat file (a process's or one thread's); NaN once it is gone. */
function statCpuMs(statPath: string): number {
  try {
    const fields = readFileSync(statPath, "utf8").split(") ")[1]!.split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return NaN;
  }
}

/** CPU time (user + system, all threads) of one process so far, ms. */
const processCpuMs = (pid: number): number => statCpuMs(`/proc/${pid}/stat`);

/** Write-type system calls (write, writev, sendmsg…) of one process so far: socket writes, as TLS records are written one per call. */
function processWrites(pid: number | "self"): number {
  try {
    return Number(/^syscw: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"))?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

const redisPort = new URL(redisUrl).port || "6379";

const kafkaPort = kafka.split(",")[0]!.split(":")[1] ?? "9092";

/**
 * The pids of the shared services the rows run against: the Kafka broker and Redis. Several
 * brokers may run on one machine (other checkouts' test brokers): scripts/kafka.sh names each
 * one's config folder after its port; a broker started otherwise counts only when it is the only one.
 */
function servicePids(): Record<string, number> {
  const found: Record<string, number> = {};
  const brokers: { pid: number; ours: boolean }[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (cmdline.includes("kafka.Kafka")) brokers.push({ pid: Number(entry), ours: cmdline.includes(`/run-${kafkaPort}/`) });
      else if (cmdline.startsWith("redis-server") && cmdline.includes(`:${redisPort}`)) found.redis = Number(entry);
    } catch {
      // exited meanwhile
    }
  }
  const broker = brokers.find((b) => b.ours) ?? (brokers.length === 1 ? brokers[0] : undefined);
  if (broker) found.kafka = broker.pid;
  return found;
}

/** Per-process CPU between two points, ms per 1,000 tasks, for the processes named in `pids`. */
function cpuMeter(pids: Record<string, number>): (tasks: number) => Record<string, number> {
  const start = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, processCpuMs(pid)]));
  return (tasks) => Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, Math.round(((processCpuMs(pid) - start[name]!) * 1000) / tasks)]));
}

/** CPU time of each thread of a process so far, ms, by thread ("main" or its tid). */
function threadCpuMs(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const ms = statCpuMs(`/proc/${pid}/task/${tid}/stat`);
    if (!Number.isNaN(ms)) out[tid === String(pid) ? "main" : tid] = ms;
  }
  return out;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

/** Node flags for the scheduler and agent processes (profiling only). */
function nodeArgs(): string[] {
  const args = process.env.BENCH_NODE_ARGS?.split(" ").filter(Boolean) ?? [];
  if (process.env.BENCH_PROFILE_DIR) args.push("--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`);
  return args;
}

/** "memory --insecure": the same as "memory" without TLS and tokens, for the cost of security (BENCH_TLS=1). */
type Mode = "memory" | "kafka+redis" | "memory --insecure";

/**
 * DistributeX as it is deployed: a scheduler process and an agent process (2 workers) started by
 * the CLI, and this process as the client. Tiny tasks rely on the defaults (prefetch 2, pipeline
 * window 100 ms); only the result cache is off, so every task really runs.
 */
async function withCluster<T>(mode: Mode, body: (client: DistributeXClient, kernelId: string, cluster: LocalCluster, topicPrefix: string) => Promise<T>, cli?: string): Promise<T> {
  const prefix = `bench${Date.now().toString(36)}`;
  const env: NodeJS.ProcessEnv = { ...process.env, DISTX_RESULT_CACHE_TTL_S: "0", DISTX_MAX_TASKS_PER_JOB: "1000000" };
  const schedulerArgs = ["--drain-grace-ms", "0"];
  if (mode === "kafka+redis") {
    schedulerArgs.push("--bus", "kafka", "--state", "redis", "--kafka-brokers", kafka, "--redis-url", redisUrl, "--kafka-topic-prefix", prefix, "--redis-prefix", prefix);
  }
  const cluster = new LocalCluster({ agents: 1, workersPerAgent: 2, logs: path.join(repoRoot(), "test-output", "logs", `bench-queue-${prefix}`), env, schedulerArgs, agentArgs: () => ["--no-calibrate", "--gpu", "off"], adminPorts: false, nodeArgs: nodeArgs(), insecure: mode === "memory --insecure", ...(cli ? { cliEntry: cli } : {}) });
  const address = await cluster.start();
  const client = new DistributeXClient(address);
  try {
    const { kernelId } = await client.registerKernel(await readFile(path.join(repoRoot(), "build/kernels/saxpy.wasm")), { name: "saxpy" });
    return await body(client, kernelId, cluster, prefix);
  } finally {
    client.close();
    await cluster.stop(2000);
  }
}

interface LatencyRow {
  system: string;
  jobs: number;
  p50Ms: number;
  p99Ms: number;
}

/** Submit → result of one no-op task at a time, on an idle system: the latency a lone request sees. */
function summarize(system: string, samples: number[]): LatencyRow {
  const sorted = samples.slice(50).sort((a, b) => a - b);
  return { system, jobs: sorted.length, p50Ms: pct(sorted, 50), p99Ms: pct(sorted, 99) };
}

async function distxSequential(mode: Mode): Promise<LatencyRow> {
  return withCluster(mode, async (client, kernelId) => {
    const input = saxpyInput(1.5, new Float32Array(0), new Float32Array(0));
    const samples: number[] = [];
    for (let i = 0; i < SEQUENTIAL + 50; i++) {
      const t0 = performance.now();
      const { jobId } = await client.submitJob({ kernelId, inputs: [input] });
      const job = await client.waitForJob(jobId, () => undefined, { finalOnly: true });
      if (job.state !== "JOB_STATE_SUCCEEDED") throw new Error(`bench job ended ${job.state}`);
      samples.push(performance.now() - t0);
    }
    return summarize(`distributex ${mode}`, samples);
  });
}

/**
 * BullMQ as the baseline: a queue on the same Redis, its event stream, and two workers of
 * concurrency 100 in this process doing the same no-op work; all closed and the queue removed after.
 */
async function withBullmq<T>(body: (queue: Queue, events: QueueEvents, workers: Worker[]) => Promise<T>): Promise<T> {
  const u = new URL(redisUrl);
  const connection = { host: u.hostname, port: Number(u.port || 6379) };
  const name = `bench-${Date.now().toString(36)}`;
  const queue = new Queue(name, { connection });
  const events = new QueueEvents(name, { connection });
  const workers = [0, 1].map(() => new Worker(name, async () => ({}), { connection, concurrency: 100, removeOnComplete: { count: TASKS * 2 } }));
  try {
    await events.waitUntilReady();
    await Promise.all(workers.map((w) => w.waitUntilReady()));
    return await body(queue, events, workers);
  } finally {
    await Promise.all(workers.map((w) => w.close()));
    await events.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

async function bullmqSequential(): Promise<LatencyRow> {
  return withBullmq(async (queue, events) => {
    const samples: number[] = [];
    for (let i = 0; i < SEQUENTIAL + 50; i++) {
      const t0 = performance.now();
      const job = await queue.add("noop", { i });
      await job.waitUntilFinished(events);
      samples.push(performance.now() - t0);
    }
    return summarize("bullmq (same redis)", samples);
  });
}

/** `cli`: another build's dist/cli/main.js for the scheduler and agent (a baseline); default this one. */
async function distx(mode: Mode, work: "no-op" | "saxpy-4k", cli?: string): Promise<Row> {
  return withCluster(mode, async (client, kernelId, cluster, topicPrefix) => {
    const n = work === "no-op" ? 0 : 4096;
    // The small kernel's tasks carry 32 KiB each: they go as several jobs of 1,500 (one job stays
    // under the 64 MiB Kafka submission limit), submitted together.
    const tasks = work === "no-op" ? TASKS : Math.min(TASKS, SAXPY_TASKS);
    const perJob = work === "no-op" ? tasks : 1500;
    const inputs = Array.from({ length: tasks }, (_, i) => saxpyInput(1.5, new Float32Array(n).fill(i), new Float32Array(n)));
    // Warm up: kernel fetch, module compile, consumer groups, the run-time model.
    await client.run({ kernelId, inputs: inputs.slice(0, 500) });
    const latencies: number[] = [];
    const processes = Object.fromEntries(cluster.processes.map((p) => [p.name, p.child.pid!]));
    const meter = cpuMeter({ ...processes, client: process.pid, ...(mode === "kafka+redis" ? servicePids() : {}) });
    // BENCH_THREADS=1 prints each cluster process's CPU by thread for the measured part (V8's GC and
    // compiler threads, the kernel workers), to see where a process's time goes.
    const threads0 = process.env.BENCH_THREADS ? Object.fromEntries(cluster.processes.map((p) => [p.name, threadCpuMs(p.child.pid!)])) : {};
    const cpu0 = machineBusyMs();
    const t0 = Date.now();
    const jobs = await Promise.all(
      Array.from({ length: Math.ceil(tasks / perJob) }, async (_, j) => {
        const { jobId } = await client.submitJob({ kernelId, inputs: inputs.slice(j * perJob, (j + 1) * perJob) });
        return client.waitForJob(jobId, (ev) => {
          if (ev.task?.state === "TASK_STATE_SUCCEEDED") latencies.push(Number(ev.atMs) - t0);
        }, { finalOnly: true });
      }),
    );
    const seconds = (Date.now() - t0) / 1000;
    const cpuMsPer1k = ((machineBusyMs() - cpu0) * 1000) / tasks;
    const cpuByProcess = meter(tasks);
    for (const [name, before] of Object.entries(threads0)) {
      const now = threadCpuMs(processes[name]!);
      const used = Object.entries(now).map(([tid, ms]) => [tid, ms - (before[tid] ?? 0)] as const).filter(([, ms]) => ms >= 30);
      console.error(`threads of ${name} (CPU ms, ≥ 30): ${used.map(([tid, ms]) => `${tid} ${ms}`).join(", ")}`);
    }
    const failed = jobs.find((j) => j.state !== "JOB_STATE_SUCCEEDED");
    if (failed) throw new Error(`bench job ended ${failed.state}`);
    latencies.sort((a, b) => a - b);
    const eventRecords = mode === "kafka+redis" ? await taskEventRecords(topicPrefix) : undefined;
    const assignmentRecords = mode === "kafka+redis" ? await taskEventRecords(topicPrefix, "assignments") : undefined;
    return { system: `distributex ${mode}`, work, tasks, seconds, tasksPerSecond: tasks / seconds, p50Ms: pct(latencies, 50), p99Ms: pct(latencies, 99), cpuMsPer1k, cpuByProcess, ...(eventRecords !== undefined ? { eventRecords, assignmentRecords } : {}) };
  }, cli);
}

async function bullmq(): Promise<Row> {
  return withBullmq(async (queue, _events, workers) => {
    const latencies: number[] = [];
    let done = 0;
    let t0 = 0;
    let finish!: () => void;
    const finished = new Promise<void>((r) => (finish = r));
    for (const w of workers)
      w.on("completed", () => {
        latencies.push(Date.now() - t0);
        if (++done === TASKS) finish();
      });
    const meter = cpuMeter({ "client (queue + workers)": process.pid, ...servicePids() });
    const cpu0 = machineBusyMs();
    t0 = Date.now();
    for (let i = 0; i < TASKS; i += 1000) {
      await queue.addBulk(Array.from({ length: Math.min(1000, TASKS - i) }, (_, j) => ({ name: "noop", data: { i: i + j } })));
    }
    await finished;
    const seconds = (Date.now() - t0) / 1000;
    const cpuMsPer1k = ((machineBusyMs() - cpu0) * 1000) / TASKS;
    const cpuByProcess = meter(TASKS);
    latencies.sort((a, b) => a - b);
    return { system: "bullmq (same redis)", work: "no-op", tasks: TASKS, seconds, tasksPerSecond: TASKS / seconds, p50Ms: pct(latencies, 50), p99Ms: pct(latencies, 99), cpuMsPer1k, cpuByProcess };
  });
}

// BENCH_PROFILE_DIR=/tmp/p writes a CPU profile of every scheduler and agent process there;
// BENCH_NODE_ARGS adds node flags to them (e.g. "--perf-basic-prof" for perf(1)).
// BENCH_ONLY=memory-no-op,kafka-no-op,kafka-latency,… runs a subset (printed, not written to
// bench/results/); the BullMQ baselines run too unless BENCH_ONLY names "no-baseline".

/**
 * The cost of security: TLS 1.3 + bearer token (the default) against --insecure, same machine,
 * same run. Throughput: rounds interleaved (one cluster at a time, so they never share the CPU).
 * Latency at rest: both clusters up at once and their jobs alternated one by one, so the load of
 * this shared machine hits both alike; with it, where the time goes: one unary RPC alone (GetJob),
 * the CPU each process spends per job, and the floor that TLS itself sets (a bare gRPC echo over
 * loopback, plain against TLS 1.3, no DistributeX code). Writes bench/results/queue-tls.{json,md}.
 */
async function tlsCost(): Promise<never> {
  const load0 = os.loadavg();
  const through: Record<string, Row[]> = { secure: [], insecure: [] };
  for (let i = 0; i < ROUNDS; i++) {
    for (const [name, mode] of [["secure", "memory"], ["insecure", "memory --insecure"]] as const) {
      const row = await distx(mode, "no-op");
      console.log(JSON.stringify(row));
      through[name]!.push(row);
    }
  }
  const paired = await pairedLatency();
  console.log(JSON.stringify(paired));
  // The latency difference is a fraction of a millisecond and moves with the machine: repeat the
  // whole paired run and report every repeat, so a reading is never one lucky run.
  const repeats = [paired];
  for (let i = 1; i < TLS_LATENCY_REPEATS; i++) {
    repeats.push(await pairedLatency());
    console.log(JSON.stringify(repeats.at(-1)));
  }
  const floor = await tlsEchoFloor();
  console.log(JSON.stringify(floor));
  const load1 = os.loadavg();
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const tps = (k: string) => med(through[k]!.map((r) => r.tasksPerSecond));
  const lat = paired.modes;
  const ms = (x: number) => x.toFixed(2);
  const load = (l: number[]) => l.map((x) => x.toFixed(1)).join(" / ");
  const md = [
    `# Cost of TLS + tokens (${new Date().toISOString()}, ${os.cpus()[0]?.model ?? "?"} × ${os.cpus().length}, Node ${process.version})`,
    "",
    `Load average (1 / 5 / 15 min) at start ${load(load0)}, at end ${load(load1)}: a shared machine, so every comparison is made inside one run.`,
    "",
    `Throughput: ${TASKS} no-op tasks submitted at once (memory backends, one agent with 2 workers), ${ROUNDS} rounds, secure and insecure interleaved, median.`,
    "",
    "| mode | no-op tasks/s | rounds | × insecure |",
    "| --- | ---: | --- | ---: |",
    ...(["insecure", "secure"] as const).map(
      (k) => `| ${k === "secure" ? "TLS 1.3 + token (default)" : "--insecure"} | ${tps(k).toFixed(0)} | ${through[k]!.map((r) => r.tasksPerSecond.toFixed(0)).join(", ")} | ${(tps(k) / tps("insecure")).toFixed(3)} |`,
    ),
    "",
    `Latency at rest: ${paired.jobs} rounds per mode one after another (after ${PAIRED_WARMUP} of warm-up), both clusters up and their rounds alternated. Each round: a one-task job by SubmitJob then WatchJob ("job"), one GetJob of it (a unary RPC alone), then the same job on one call by RunJob (what \`distx submit --wait\` and the typed client's run use). p50 in ms; CPU in ms per round, user + system of each process.`,
    "",
    "| mode | RunJob p50 | RunJob p99 | job p50 | job p99 | SubmitJob p50 | submit → final event p50 | GetJob p50 | CPU scheduler | CPU agent | CPU client |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...(["insecure", "secure"] as const).map(
      (k) =>
        `| ${k === "secure" ? "TLS 1.3 + token (default)" : "--insecure"} | ${ms(lat[k]!.runP50)} | ${ms(lat[k]!.runP99)} | ${ms(lat[k]!.jobP50)} | ${ms(lat[k]!.jobP99)} | ${ms(lat[k]!.submitP50)} | ${ms(lat[k]!.watchP50)} | ${ms(lat[k]!.getJobP50)} | ${ms(lat[k]!.cpu.scheduler)} | ${ms(lat[k]!.cpu.agent)} | ${ms(lat[k]!.cpu.client)} |`,
    ),
    `| secure − insecure | ${ms(lat.secure!.runP50 - lat.insecure!.runP50)} | ${ms(lat.secure!.runP99 - lat.insecure!.runP99)} | ${ms(lat.secure!.jobP50 - lat.insecure!.jobP50)} | ${ms(lat.secure!.jobP99 - lat.insecure!.jobP99)} | ${ms(lat.secure!.submitP50 - lat.insecure!.submitP50)} | ${ms(lat.secure!.watchP50 - lat.insecure!.watchP50)} | ${ms(lat.secure!.getJobP50 - lat.insecure!.getJobP50)} | ${ms(lat.secure!.cpu.scheduler - lat.insecure!.cpu.scheduler)} | ${ms(lat.secure!.cpu.agent - lat.insecure!.cpu.agent)} | ${ms(lat.secure!.cpu.client - lat.insecure!.cpu.client)} |`,
    "",
    `Median of the per-pair differences (secure − the insecure one run right after it): RunJob ${ms(paired.pairedRunDiffP50)} ms, SubmitJob + WatchJob ${ms(paired.pairedDiffP50)} ms.`,
    "",
    `TLS floor (no DistributeX code): a bare gRPC unary echo of ${ECHO_BYTES} bytes between two processes over loopback, ${floor.calls} calls per mode in ${floor.rounds} alternating rounds: p50 plain ${ms(floor.plainP50)} ms, TLS 1.3 ${ms(floor.tlsP50)} ms (+${ms(floor.tlsP50 - floor.plainP50)} ms per round trip).`,
    "",
    ...repeatsTable(repeats),
    "Goal (issue 11): ≤ 10% lower throughput, ≤ 0.3 ms added p50 at rest.",
  ].join("\n");
  console.log(md);
  await mkdir(path.join(repoRoot(), "bench/results"), { recursive: true });
  await writeFile(path.join(repoRoot(), "bench/results/queue-tls.json"), JSON.stringify({ tasks: TASKS, loadAverage: { start: load0, end: load1 }, through, latency: paired, latencyRepeats: repeats.slice(1), floor }, null, 2));
  await writeFile(path.join(repoRoot(), "bench/results/queue-tls.md"), md + "\n" + (await keptNotes("bench/results/queue-tls.md")));
  process.exit(0);
}

const PAIRED_WARMUP = 50;

interface ModeLatency {
  jobP50: number;
  jobP99: number;
  submitP50: number;
  watchP50: number;
  getJobP50: number;
  /** The same one-task job by RunJob (one call). */
  runP50: number;
  runP99: number;
  /** CPU ms per job (and its GetJob), by process. */
  cpu: { scheduler: number; agent: number; client: number };
  /** Write system calls per job (and its GetJob), by process. */
  writes: { scheduler: number; agent: number; client: number };
}

/** Both clusters at once, one job each in turn: the latency at rest of each, measured under the same load. */
async function pairedLatency(): Promise<{ jobs: number; modes: Record<string, ModeLatency>; pairedDiffP50: number; pairedRunDiffP50: number; window: { startUs: number; endUs: number } }> {
  return withCluster("memory", (secure, secureKernel, secureCluster) =>
    withCluster("memory --insecure", async (insecure, insecureKernel, insecureCluster) => {
      const input = saxpyInput(1.5, new Float32Array(0), new Float32Array(0));
      const sides = {
        secure: { client: secure, kernelId: secureKernel, cluster: secureCluster },
        insecure: { client: insecure, kernelId: insecureKernel, cluster: insecureCluster },
      };
      type Sample = { job: number; submit: number; watch: number; getJob: number; run: number };
      const samples: Record<string, Sample[]> = { secure: [], insecure: [] };
      const zero = () => ({ scheduler: 0, agent: 0, client: 0 });
      const cpu: Record<string, { scheduler: number; agent: number; client: number }> = { secure: zero(), insecure: zero() };
      const writes: Record<string, { scheduler: number; agent: number; client: number }> = { secure: zero(), insecure: zero() };
      const pidOf = (c: LocalCluster, name: string) => c.processes.find((p) => p.name === name || p.name.startsWith(name))!.child.pid!;
      const clientCpuMs = () => {
        const u = process.cpuUsage();
        return (u.user + u.system) / 1000;
      };
      // The measured window on the monotonic clock (that of V8's CPU profiles, to cut out start-up).
      const window = { startUs: 0, endUs: 0 };
      // The order inside a pair alternates too, so neither mode always runs first.
      for (let i = 0; i < SEQUENTIAL + PAIRED_WARMUP; i++) {
        if (i === PAIRED_WARMUP) window.startUs = Number(process.hrtime.bigint() / 1000n);
        for (const k of i % 2 ? (["insecure", "secure"] as const) : (["secure", "insecure"] as const)) {
          const side = sides[k];
          const sched = pidOf(side.cluster, "scheduler");
          const agent = pidOf(side.cluster, "agent");
          const c0 = { scheduler: processCpuMs(sched), agent: processCpuMs(agent), client: clientCpuMs() };
          const w0 = { scheduler: processWrites(sched), agent: processWrites(agent), client: processWrites("self") };
          const t0 = performance.now();
          const { jobId } = await side.client.submitJob({ kernelId: side.kernelId, inputs: [input] });
          const t1 = performance.now();
          const job = await side.client.waitForJob(jobId, () => undefined, { finalOnly: true });
          const t2 = performance.now();
          await side.client.getJob(jobId);
          const t3 = performance.now();
          // The same job on one call (RunJob: what `distx submit --wait` and client.run use).
          const ran = await side.client.runJob({ kernelId: side.kernelId, inputs: [input] });
          const t4 = performance.now();
          if (job.state !== "JOB_STATE_SUCCEEDED" || ran.state !== "JOB_STATE_SUCCEEDED") throw new Error(`bench job ended ${job.state} / ${ran.state}`);
          if (i < PAIRED_WARMUP) continue;
          samples[k]!.push({ job: t2 - t0, submit: t1 - t0, watch: t2 - t1, getJob: t3 - t2, run: t4 - t3 });
          cpu[k]!.scheduler += processCpuMs(sched) - c0.scheduler;
          cpu[k]!.agent += processCpuMs(agent) - c0.agent;
          cpu[k]!.client += clientCpuMs() - c0.client;
          writes[k]!.scheduler += processWrites(sched) - w0.scheduler;
          writes[k]!.agent += processWrites(agent) - w0.agent;
          writes[k]!.client += processWrites("self") - w0.client;
        }
      }
      window.endUs = Number(process.hrtime.bigint() / 1000n);
      const p = (xs: number[], q: number) => pct([...xs].sort((a, b) => a - b), q);
      const modes: Record<string, ModeLatency> = {};
      for (const k of ["secure", "insecure"]) {
        const xs = samples[k]!;
        modes[k] = {
          jobP50: p(xs.map((x) => x.job), 50),
          jobP99: p(xs.map((x) => x.job), 99),
          submitP50: p(xs.map((x) => x.submit), 50),
          watchP50: p(xs.map((x) => x.watch), 50),
          getJobP50: p(xs.map((x) => x.getJob), 50),
          runP50: p(xs.map((x) => x.run), 50),
          runP99: p(xs.map((x) => x.run), 99),
          cpu: { scheduler: cpu[k]!.scheduler / xs.length, agent: cpu[k]!.agent / xs.length, client: cpu[k]!.client / xs.length },
          writes: { scheduler: writes[k]!.scheduler / xs.length, agent: writes[k]!.agent / xs.length, client: writes[k]!.client / xs.length },
        };
      }
      const diffs = samples.secure!.map((s, i) => s.job - samples.insecure![i]!.job);
      const runDiffs = samples.secure!.map((s, i) => s.run - samples.insecure![i]!.run);
      return { jobs: SEQUENTIAL, modes, pairedDiffP50: p(diffs, 50), pairedRunDiffP50: p(runDiffs, 50), window };
    }),
  );
}

const ECHO_BYTES = 200;

/** A bare gRPC unary echo, plain and TLS 1.3 (certificates from the cluster PKI code), server in a child process. */
async function tlsEchoFloor(): Promise<{ calls: number; rounds: number; plainP50: number; tlsP50: number }> {
  const { fork } = await import("node:child_process");
  const { createCa } = await import("../../scheduler/auth/pki.js");
  const { secureChannel } = await import("../../common/secure-channel.js");
  const grpc = await import("@grpc/grpc-js");
  const ca = await createCa("bench echo CA");
  const child = fork(fileURLToPath(new URL("./tls-echo-server.js", import.meta.url)), [], { env: { ...process.env, ECHO_CA: JSON.stringify(ca) } });
  try {
    const ports = await new Promise<{ plain: number; tls: number }>((resolve, reject) => {
      child.once("message", (m) => resolve(m as { plain: number; tls: number }));
      child.once("exit", (code) => reject(new Error(`echo server exited with ${code}`)));
    });
    const Ctor = grpc.makeGenericClientConstructor(ECHO_SERVICE, "Echo");
    const tls = secureChannel(`127.0.0.1:${ports.tls}`, { ca: Buffer.from(ca.certPem) });
    const clients = {
      plain: new Ctor(`127.0.0.1:${ports.plain}`, grpc.credentials.createInsecure()),
      tls: new Ctor(`127.0.0.1:${ports.tls}`, tls.credentials, tls.options),
    };
    const payload = Buffer.alloc(ECHO_BYTES);
    const call = (c: InstanceType<typeof Ctor>) =>
      new Promise<void>((resolve, reject) => (c as unknown as Record<string, (b: Buffer, cb: (e: Error | null) => void) => void>).Echo!(payload, (e) => (e ? reject(e) : resolve())));
    const calls = 2000;
    const rounds = 6;
    const p50s: Record<"plain" | "tls", number[]> = { plain: [], tls: [] };
    for (const k of ["plain", "tls"] as const) for (let i = 0; i < 300; i++) await call(clients[k]);
    for (let r = 0; r < rounds; r++) {
      for (const k of r % 2 ? (["tls", "plain"] as const) : (["plain", "tls"] as const)) {
        const xs: number[] = [];
        for (let i = 0; i < calls; i++) {
          const t0 = performance.now();
          await call(clients[k]);
          xs.push(performance.now() - t0);
        }
        p50s[k].push(pct(xs.sort((a, b) => a - b), 50));
      }
    }
    for (const c of Object.values(clients)) c.close();
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    return { calls, rounds, plainP50: med(p50s.plain), tlsP50: med(p50s.tls) };
  } finally {
    child.kill();
  }
}

/** One row per repeat of the paired latency run: the added p50 of each path and the paired medians. */
function repeatsTable(repeats: Awaited<ReturnType<typeof pairedLatency>>[]): string[] {
  if (repeats.length < 2) return [];
  const ms = (x: number) => x.toFixed(2);
  const rows = repeats.map((r, i) => {
    const s = r.modes.secure!;
    const p = r.modes.insecure!;
    return `| ${i + 1} | ${ms(p.runP50)} | ${ms(s.runP50 - p.runP50)} | ${ms(r.pairedRunDiffP50)} | ${ms(p.jobP50)} | ${ms(s.jobP50 - p.jobP50)} | ${ms(r.pairedDiffP50)} |`;
  });
  return [
    `The paired latency run repeated ${repeats.length} times in a row (BENCH_TLS_LATENCY_REPEATS; repeat 1 is the table above), ms:`,
    "",
    "| repeat | RunJob p50 insecure | RunJob added p50 | RunJob paired median | job p50 insecure | job added p50 | job paired median |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows,
    "",
  ];
}

// After every declaration the TLS bench uses (a top-level await runs in place).
if (process.env.BENCH_TLS === "1") await tlsCost();
// BENCH_TLS=latency: only the paired latency at rest (with CPU and write calls per job), printed, nothing written.
if (process.env.BENCH_TLS === "latency") {
  console.log(JSON.stringify(await pairedLatency(), null, 1));
  process.exit(0);
}
if (process.env.BENCH_KAFKA_SIGNING === "1") {
  if (!process.env.BENCH_BASELINE_CLI) throw new Error("BENCH_KAFKA_SIGNING=1 needs BENCH_BASELINE_CLI=<a baseline build's dist/cli/main.js>");
  await compareBuilds(signedEvents, { rounds: ROUNDS, tasks: TASKS, baselineCli: process.env.BENCH_BASELINE_CLI, run: (cli) => distx("kafka+redis", "no-op", cli) });
}
if (process.env.BENCH_KAFKA_SEALING === "1") {
  if (!process.env.BENCH_BASELINE_CLI) throw new Error("BENCH_KAFKA_SEALING=1 needs BENCH_BASELINE_CLI=<a baseline build's dist/cli/main.js>");
  await compareBuilds(sealedAssignments, { rounds: ROUNDS, tasks: TASKS, baselineCli: process.env.BENCH_BASELINE_CLI, run: (cli) => distx("kafka+redis", "no-op", cli) });
}

const runs: [string, () => Promise<Row>][] = [
  ["bullmq", () => bullmq()],
  ["memory-no-op", () => distx("memory", "no-op")],
  ["kafka-no-op", () => distx("kafka+redis", "no-op")],
  ["memory-saxpy", () => distx("memory", "saxpy-4k")],
  ["kafka-saxpy", () => distx("kafka+redis", "saxpy-4k")],
];
const only = process.env.BENCH_ONLY?.split(",");
const rows: Row[] = [];
for (const [name, run] of runs) {
  if (only && !only.includes(name) && (name !== "bullmq" || only.includes("no-baseline"))) continue;
  // Several rounds, interleaved with nothing else, and the median kept: this 2-core VM's
  // throughput moves ±20% from run to run (steal time, the broker's own housekeeping).
  const rounds: Row[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const row = await run();
    console.log(JSON.stringify(row));
    rounds.push(row);
  }
  const sorted = [...rounds].sort((a, b) => a.tasksPerSecond - b.tasksPerSecond);
  rows.push({ ...sorted[Math.floor(sorted.length / 2)]!, rounds: rounds.map((r) => Math.round(r.tasksPerSecond)) });
}
const sequentialRuns: [string, () => Promise<LatencyRow>][] = [
  ["bullmq-latency", () => bullmqSequential()],
  ["memory-latency", () => distxSequential("memory")],
  ["kafka-latency", () => distxSequential("kafka+redis")],
];
const latencyRows: LatencyRow[] = [];
for (const [name, run] of sequentialRuns) {
  if (only && !only.includes(name) && (name !== "bullmq-latency" || only.includes("no-baseline") || !only.some((o) => o.endsWith("-latency")))) continue;
  const row = await run();
  console.log(JSON.stringify(row));
  latencyRows.push(row);
}
const base = rows.find((r) => r.system.startsWith("bullmq"))?.tasksPerSecond;
const latencyBase = latencyRows.find((r) => r.system.startsWith("bullmq"))?.p50Ms;
if (base === undefined) process.exit(0);
const md = [
  `# Queue bench (${new Date().toISOString()}, ${os.cpus()[0]?.model ?? "?"} × ${os.cpus().length}, Node ${process.version}, ${ROUNDS} rounds per row)`,
  "",
  "| system | work | tasks | tasks/s (median) | rounds | × BullMQ | p50 ms | p99 ms | machine CPU ms / 1k tasks |",
  "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
  ...rows.map((r) => `| ${r.system} | ${r.work} | ${r.tasks} | ${r.tasksPerSecond.toFixed(0)} | ${(r.rounds ?? []).join(", ")} | ${(r.tasksPerSecond / base).toFixed(2)} | ${r.p50Ms.toFixed(0)} | ${r.p99Ms.toFixed(0)} | ${r.cpuMsPer1k.toFixed(0)} |`),
  "",
  "All of a row's tasks are submitted at once; its p50 and p99 run from that moment to each task's result being recorded, so they include queueing behind earlier tasks.",
  "DistributeX runs as deployed: a scheduler process and one agent process (2 workers), started by the CLI with default settings (result cache off). BullMQ runs two workers of concurrency 100 inside the bench process, with the same no-op work.",
  "",
  "Machine CPU by process (ms per 1,000 tasks, user + system, all threads):",
  "",
  "| system | work | by process |",
  "| --- | --- | --- |",
  ...rows.map((r) => `| ${r.system} | ${r.work} | ${Object.entries(r.cpuByProcess ?? {}).map(([name, ms]) => `${name} ${ms}`).join(", ")} |`),
  "",
  `Latency at rest: ${SEQUENTIAL} jobs of one no-op task, one after another (after 50 of warm-up), from submission until the client knows the result (DistributeX: SubmitJob then WatchJob; BullMQ: add then waitUntilFinished):`,
  "",
  "| system | jobs | p50 ms | p99 ms | p50 × BullMQ |",
  "| --- | ---: | ---: | ---: | ---: |",
  ...latencyRows.map((r) => `| ${r.system} | ${r.jobs} | ${r.p50Ms.toFixed(1)} | ${r.p99Ms.toFixed(1)} | ${latencyBase ? (r.p50Ms / latencyBase).toFixed(2) : "–"} |`),
  "",
  "At rest, a DistributeX task crosses three processes (client → scheduler → agent → its worker thread, and back); BullMQ's worker runs in the same process as the client, with Redis the only other process. The whole-machine CPU column counts every process (Kafka broker, Redis, the client) from /proc/stat.",
].join("\n");
console.log(md);
// Only a full run replaces the results on record.
if (only) process.exit(0);
await mkdir(path.join(repoRoot(), "bench/results"), { recursive: true });
await writeFile(path.join(repoRoot(), "bench/results/queue.json"), JSON.stringify({ tasks: TASKS, rows, latencyAtRest: latencyRows }, null, 2));
await writeFile(path.join(repoRoot(), "bench/results/queue.md"), md + "\n");
process.exit(0);
