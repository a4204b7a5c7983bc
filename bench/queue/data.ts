// Data-plane bench: tasks that carry data (32 KiB, 1 MiB, 16 MiB of input each) through
// DistributeX in memory and on Kafka + Redis, in tasks/s and MB/s of task input, beside BullMQ
// carrying the same payloads on the same Redis and beside this machine's own limits measured in
// the same run (memcpy bandwidth, loopback TCP bandwidth); and a gemm job (2048², 32 row-block
// tasks) with B as a shared input against B copied into every task.
// Run: eval "$(scripts/test-services.sh)" && npm run bench:data   (writes bench/results/queue-data.{json,md})
// One row: BENCH_DATA_ONLY=memory:32768 BENCH_DATA_MB=64 node dist/bench/queue/data.js; BENCH_DATA_NODE_ARGS go to the
// scheduler and agent processes, e.g. BENCH_DATA_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile them.
// BENCH_DATA_ROUNDS=n runs a DistributeX row n times on the same cluster and reports the last (CPU per task
// printed for each): the first round of fresh daemons includes their JIT warm-up.
import { keptNotes } from "./kept-notes.js";
import { randomFillSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { readFile, writeFile, mkdir } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Queue, QueueEvents, Worker } from "bullmq";
import { DistributeXClient } from "../../client/index.js";
import { LocalCluster } from "../../cli/local-cluster.js";
import { repoRoot } from "../../common/paths.js";
import { gemm } from "../../kernels/reference/gemm.js";
import { histogram } from "../../kernels/reference/histogram.js";

const kafka = process.env.DISTX_TEST_KAFKA ?? "127.0.0.1:9092";
const redisUrl = process.env.DISTX_TEST_REDIS ?? "redis://127.0.0.1:6379";
const MiB = 1024 * 1024;
/** Input bytes each row moves in all (BENCH_DATA_MB, default 256 MiB), split into tasks of the row's size. */
const ROW_BYTES = Number(process.env.BENCH_DATA_MB ?? 256) * MiB;
const SIZES = [32 * 1024, MiB, 16 * MiB];
/** BENCH_DATA_ONLY="memory:32768" (or "kafka+redis:1048576", "bullmq:32768"): run that one row alone,
 * print it and write no results file, to profile or compare builds one row at a time. */
const ONLY = process.env.BENCH_DATA_ONLY;
const ROUNDS = Math.max(1, Number(process.env.BENCH_DATA_ROUNDS ?? 1));
const GEMM_N = Number(process.env.BENCH_GEMM_N ?? 2048);
const GEMM_TASKS = 32;

type Mode = "memory" | "kafka+redis";

interface Row {
  system: string;
  inputBytes: number;
  tasks: number;
  seconds: number;
  tasksPerSecond: number;
  mbPerSecond: number;
}

const mb = (bytes: number) => bytes / 1e6;

/** memcpy bandwidth: Buffer.copy of 64 MiB, repeated, best of 5 (MB/s). */
function memcpyMBps(): number {
  const src = Buffer.alloc(64 * MiB, 1);
  const dst = Buffer.alloc(64 * MiB);
  let best = 0;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let i = 0; i < 8; i++) src.copy(dst);
    best = Math.max(best, mb(8 * src.byteLength) / ((performance.now() - t0) / 1000));
  }
  return best;
}

/** Loopback TCP bandwidth: 1 GiB through a socket to a server in this process (MB/s). */
async function loopbackTcpMBps(): Promise<number> {
  const total = 1024 * MiB;
  const chunk = Buffer.alloc(4 * MiB, 2);
  let received = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const server = net.createServer((sock) => {
    sock.on("data", (d) => {
      received += d.byteLength;
      if (received >= total) done();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const sock = net.connect(port, "127.0.0.1");
  await new Promise<void>((r) => sock.once("connect", r));
  const t0 = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const pump = () => {
      while (sent < total) {
        sent += chunk.byteLength;
        if (!sock.write(chunk)) return void sock.once("drain", pump);
      }
      resolve();
    };
    pump();
  });
  await finished;
  const seconds = (performance.now() - t0) / 1000;
  sock.destroy();
  server.close();
  return mb(total) / seconds;
}

/** Distinct histogram inputs (random values, binned by their top byte) of `bytes` each. */
function makeInputs(bytes: number, count: number): Buffer[] {
  return Array.from({ length: count }, () => {
    const b = Buffer.alloc(bytes);
    randomFillSync(b);
    b.writeUInt32LE((bytes - 8) / 4, 0);
    b.writeUInt32LE(24, 4);
    return b;
  });
}

/** CPU seconds (user + system, all threads) each process has used: this bench, and the cluster's from /proc (Linux). */
function cpuSeconds(cluster: LocalCluster): Record<string, number> {
  const out: Record<string, number> = {};
  const own = process.cpuUsage();
  out.client = (own.user + own.system) / 1e6;
  for (const p of cluster.processes) {
    try {
      // Fields 14 and 15 (utime, stime) in clock ticks, counted after the ")" that ends the name.
      const fields = readFileSync(`/proc/${p.child.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      out[p.name] = (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      // Not Linux, or the process is gone: left out.
    }
  }
  return out;
}

async function withCluster<T>(mode: Mode, body: (client: DistributeXClient, cluster: LocalCluster) => Promise<T>): Promise<T> {
  const prefix = `benchdata${Date.now().toString(36)}`;
  const env: NodeJS.ProcessEnv = { ...process.env, DISTX_RESULT_CACHE_TTL_S: "0", DISTX_MAX_JOB_BYTES: String(1024 * MiB) };
  const schedulerArgs = ["--drain-grace-ms", "0"];
  if (mode === "kafka+redis") {
    schedulerArgs.push("--bus", "kafka", "--state", "redis", "--kafka-brokers", kafka, "--redis-url", redisUrl, "--kafka-topic-prefix", prefix, "--redis-prefix", prefix);
  }
  const nodeArgs = (process.env.BENCH_DATA_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const cluster = new LocalCluster({ nodeArgs, agents: 1, workersPerAgent: 2, logs: path.join(repoRoot(), "test-output", "logs", `bench-data-${prefix}`), env, schedulerArgs, agentArgs: () => ["--no-calibrate", "--gpu", "off"], adminPorts: false });
  const address = await cluster.start();
  const client = new DistributeXClient(address);
  try {
    return await body(client, cluster);
  } finally {
    client.close();
    await cluster.stop(2000);
  }
}

async function distxRow(mode: Mode, size: number): Promise<Row> {
  return withCluster(mode, async (client, cluster) => {
    const { kernelId } = await client.registerKernel(await readFile(path.join(repoRoot(), "build/kernels/histogram.wasm")), { name: "histogram" });
    const tasks = Math.max(4, Math.floor(ROW_BYTES / size));
    // Warm-up: kernel fetch and compile, consumer groups.
    await client.run({ kernelId, inputs: makeInputs(size, 4) });
    const inputs = makeInputs(size, tasks);
    // Inputs under the by-reference threshold travel inside the Kafka submission record (64 MiB
    // at most): the row goes as jobs of at most 32 MiB each, submitted together.
    const perJob = Math.max(1, Math.floor((32 * MiB) / size));
    let jobs: Awaited<ReturnType<DistributeXClient["run"]>>[] = [];
    let seconds = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      const cpu0 = cpuSeconds(cluster);
      const t0 = performance.now();
      jobs = await Promise.all(
        Array.from({ length: Math.ceil(tasks / perJob) }, (_, j) => client.run({ kernelId, inputs: inputs.slice(j * perJob, (j + 1) * perJob), timeoutMs: 120_000 })),
      );
      seconds = (performance.now() - t0) / 1000;
      // CPU per task by process: robust to a busy machine where tasks/s is not (a row alone prints it).
      const cpu1 = cpuSeconds(cluster);
      const label = ROUNDS > 1 ? `round ${round}: ` : "";
      if (ONLY) console.log(`${label}cpu µs per task: ${Object.keys(cpu1).map((k) => `${k} ${Math.round(((cpu1[k]! - (cpu0[k] ?? 0)) * 1e6) / tasks)}`).join(", ")}`);
    }
    for (const { job } of jobs) if (job.state !== "JOB_STATE_SUCCEEDED") throw new Error(`bench job ended ${job.state}`);
    const job = jobs[0]!.job;
    const results = await client.getResults(job.jobId);
    const first = results[0]!;
    if (!Buffer.from(first.output).equals(Buffer.from(histogram.reference(inputs[first.taskIndex]!)))) throw new Error("wrong histogram");
    return { system: `distributex ${mode}`, inputBytes: size, tasks, seconds, tasksPerSecond: tasks / seconds, mbPerSecond: mb(size * tasks) / seconds };
  });
}

/** BullMQ on the same Redis: the same payloads (base64 in the job data), two workers of concurrency 4 computing the same histogram in JS. */
async function bullmqRow(size: number): Promise<Row> {
  const u = new URL(redisUrl);
  const connection = { host: u.hostname, port: Number(u.port || 6379) };
  const name = `benchdata-${Date.now().toString(36)}`;
  const queue = new Queue(name, { connection });
  const events = new QueueEvents(name, { connection });
  const work = async (job: { data: { input: string } }) => {
    const out = histogram.reference(Buffer.from(job.data.input, "base64"));
    return Buffer.from(out).toString("base64");
  };
  const workers = [0, 1].map(() => new Worker(name, work, { connection, concurrency: 4, removeOnComplete: { count: 0 }, removeOnFail: { count: 0 } }));
  // 16 MiB payloads: fewer tasks, so the shared Redis never holds more than ~1/4 of a row at once.
  const tasks = Math.max(4, Math.floor(ROW_BYTES / size / (size >= 16 * MiB ? 2 : 1)));
  try {
    await events.waitUntilReady();
    await Promise.all(workers.map((w) => w.waitUntilReady()));
    const inputs = makeInputs(size, tasks);
    // Counted on the workers (in this process): a completed job is removed at once, as a queue
    // carrying data should, so waitUntilFinished could no longer find it.
    let completed = 0;
    const allDone = new Promise<void>((resolve, reject) => {
      for (const w of workers) {
        w.on("completed", () => ++completed === tasks && resolve());
        w.on("failed", (_job, err) => reject(err));
      }
    });
    const t0 = performance.now();
    for (let i = 0; i < inputs.length; i += 16) {
      await queue.addBulk(inputs.slice(i, i + 16).map((b, k) => ({ name: "h", data: { input: b.toString("base64") }, opts: { jobId: `j${i + k}` } })));
    }
    await allDone;
    const seconds = (performance.now() - t0) / 1000;
    return { system: "bullmq (same redis)", inputBytes: size, tasks, seconds, tasksPerSecond: tasks / seconds, mbPerSecond: mb(size * tasks) / seconds };
  } finally {
    await Promise.all(workers.map((w) => w.close()));
    await events.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

interface GemmRow {
  form: string;
  n: number;
  tasks: number;
  seconds: number;
  gflops: number;
  /** Bytes the client sent for the job and the agent fetched, per task. */
  bytesPerTask: number;
}

async function gemmRows(): Promise<GemmRow[]> {
  return withCluster("memory", async (client) => {
    const { kernelId } = await client.registerKernel(await readFile(path.join(repoRoot(), "build/kernels/gemm.wasm")), { name: "gemm" });
    const flop = 2 * GEMM_N ** 3;
    const out: GemmRow[] = [];
    const memoryBytes = 256 * MiB;
    // Warm-up at a small size.
    await client.run({ kernelId, inputs: gemm.makeTasks({ tasks: 2, size: 128 }) });
    {
      const inputs = gemm.makeTasks({ tasks: GEMM_TASKS, size: GEMM_N, seed: 3 });
      const t0 = performance.now();
      const { job } = await client.run({ kernelId, inputs, timeoutMs: 300_000, resources: { memoryBytes } });
      const seconds = (performance.now() - t0) / 1000;
      if (job.state !== "JOB_STATE_SUCCEEDED") throw new Error(`gemm copied ended ${job.state}`);
      out.push({ form: "B copied into every task", n: GEMM_N, tasks: GEMM_TASKS, seconds, gflops: flop / seconds / 1e9, bytesPerTask: inputs.reduce((s, b) => s + b.byteLength, 0) / GEMM_TASKS });
    }
    {
      const { inputs, shared } = gemm.shared!.makeTasks({ tasks: GEMM_TASKS, size: GEMM_N, seed: 3 });
      const t0 = performance.now();
      const { job } = await client.run({ kernelId, inputs, sharedInputs: shared, timeoutMs: 300_000, resources: { memoryBytes } });
      const seconds = (performance.now() - t0) / 1000;
      if (job.state !== "JOB_STATE_SUCCEEDED") throw new Error(`gemm shared ended ${job.state}`);
      // B is sent once and fetched once by the one agent: 1/32 of it per task.
      const bytes = inputs.reduce((s, b) => s + b.byteLength, 0) + shared[0]!.data.byteLength;
      out.push({ form: "B as a shared input", n: GEMM_N, tasks: GEMM_TASKS, seconds, gflops: flop / seconds / 1e9, bytesPerTask: bytes / GEMM_TASKS });
    }
    return out;
  });
}

async function main(): Promise<void> {
  if (ONLY) {
    const [system, sizeText] = ONLY.split(":");
    const size = Number(sizeText);
    if (!Number.isInteger(size) || size <= 0) throw new Error(`BENCH_DATA_ONLY=${ONLY}: want system:bytes, e.g. memory:32768`);
    if (system === "bullmq") console.log(JSON.stringify(await bullmqRow(size)));
    else if (system === "memory" || system === "kafka+redis") console.log(JSON.stringify(await distxRow(system, size)));
    else throw new Error(`BENCH_DATA_ONLY=${ONLY}: system is memory, kafka+redis or bullmq`);
    return;
  }
  const started = new Date().toISOString();
  const load = os.loadavg();
  const memcpy = memcpyMBps();
  const tcp = await loopbackTcpMBps();
  console.log(`memcpy ${memcpy.toFixed(0)} MB/s, loopback TCP ${tcp.toFixed(0)} MB/s`);
  const rows: Row[] = [];
  for (const size of SIZES) {
    rows.push(await bullmqRow(size));
    console.log(JSON.stringify(rows.at(-1)));
    for (const mode of ["memory", "kafka+redis"] as const) {
      rows.push(await distxRow(mode, size));
      console.log(JSON.stringify(rows.at(-1)));
    }
  }
  const gemmResults = await gemmRows();
  for (const g of gemmResults) console.log(JSON.stringify(g));
  const loadAfter = os.loadavg();
  const cpu = os.cpus();
  const fmt = (n: number, d = 0) => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
  const bull = (size: number) => rows.find((r) => r.system.startsWith("bullmq") && r.inputBytes === size)!;
  const md = [
    `# Data-plane bench (${started}, ${cpu[0]?.model ?? "?"} × ${cpu.length}, Node ${process.version})`,
    "",
    `Load average at start ${load.map((l) => l.toFixed(2)).join(" / ")}, at end ${loadAfter.map((l) => l.toFixed(2)).join(" / ")} (1/5/15 min).`,
    "",
    `Machine limits in the same run: memcpy ${fmt(memcpy)} MB/s (Buffer.copy of 64 MiB), loopback TCP ${fmt(tcp)} MB/s (1 GiB through one socket).`,
    "",
    "| system | input per task | tasks | tasks/s | MB/s of input | × BullMQ | % of loopback TCP | % of memcpy |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map((r) => `| ${r.system} | ${r.inputBytes >= MiB ? `${r.inputBytes / MiB} MiB` : `${r.inputBytes / 1024} KiB`} | ${r.tasks} | ${fmt(r.tasksPerSecond, r.tasksPerSecond < 100 ? 1 : 0)} | ${fmt(r.mbPerSecond)} | ${(r.mbPerSecond / bull(r.inputBytes).mbPerSecond).toFixed(2)} | ${((100 * r.mbPerSecond) / tcp).toFixed(1)} | ${((100 * r.mbPerSecond) / memcpy).toFixed(2)} |`),
    "",
    `Each row moves ${ROW_BYTES / MiB} MiB of distinct inputs (BENCH_DATA_MB; BullMQ's 16 MiB row half of it, to keep the shared Redis small) through the histogram kernel (it reads every input byte; output 1 KiB) and times submit → all results recorded. DistributeX: a scheduler and one agent (2 workers) as separate processes, started by the CLI; the row goes as jobs of at most 32 MiB submitted together (inline inputs must fit a Kafka submission record); inputs of ≥ 64 KiB go by reference (stored once, fetched by the agent over FetchBlob), those over 1 MiB are streamed to the scheduler as blobs. BullMQ: two workers of concurrency 4 in the bench process, the payload base64 in the job data, the same histogram in JS. Run: \`eval "$(scripts/test-services.sh)" && npm run bench:data\`.`,
    "",
    `gemm ${GEMM_N}², ${GEMM_TASKS} row-block tasks, in memory (one agent, 2 workers):`,
    "",
    "| form | seconds | GFLOP/s | input bytes per task | bytes per task × copied |",
    "| --- | ---: | ---: | ---: | ---: |",
    ...gemmResults.map((g) => `| ${g.form} | ${g.seconds.toFixed(2)} | ${g.gflops.toFixed(1)} | ${fmt(g.bytesPerTask)} | ${(g.bytesPerTask / gemmResults[0]!.bytesPerTask).toFixed(3)} |`),
    "",
  ].join("\n");
  await mkdir(path.join(repoRoot(), "bench", "results"), { recursive: true });
  await writeFile(path.join(repoRoot(), "bench", "results", "queue-data.json"), JSON.stringify({ started, load, loadAfter, memcpyMBps: memcpy, loopbackTcpMBps: tcp, rows, gemm: gemmResults }, null, 2));
  await writeFile(path.join(repoRoot(), "bench", "results", "queue-data.md"), md + (await keptNotes("bench/results/queue-data.md")));
  console.log(md);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
