// Queue bench: end-to-end throughput (tasks/s) and latency (submit → result recorded, p50/p99)
// for no-op tasks and a small kernel, on the embedded backends and on Kafka+Redis, with BullMQ
// on the same Redis doing the same no-op work as the same-run baseline.
// Run: eval "$(scripts/test-services.sh)" && npm run bench:queue   (writes bench/results/queue.{json,md})
import { readFile, writeFile, mkdir } from "node:fs/promises";
import path from "node:path";
import { Queue, QueueEvents, Worker } from "bullmq";
import { Agent } from "../../agent/agent.js";
import { DistributeXClient } from "../../client/index.js";
import { agentConfigSchema, loadConfig, schedulerConfigSchema } from "../../common/config.js";
import { createLogger } from "../../common/logger.js";
import { repoRoot } from "../../common/paths.js";
import { saxpyInput } from "../../kernels/reference/index.js";
import { openBackends } from "../../scheduler/backends/factory.js";
import { Scheduler } from "../../scheduler/scheduler.js";

const TASKS = Number(process.env.BENCH_TASKS ?? 5000);
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
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

async function distx(mode: "memory" | "kafka+redis", work: "no-op" | "saxpy-4k"): Promise<Row> {
  const prefix = `bench${Date.now().toString(36)}`;
  const flags: Record<string, unknown> = { port: 0, drainGraceMs: 0, resultCacheTtlS: 0, prefetchPerWorker: 64, maxTasksPerJob: 1_000_000 };
  if (mode === "kafka+redis") Object.assign(flags, { queue: "kafka", state: "redis", kafkaBrokers: kafka, redisUrl, kafkaTopicPrefix: prefix, redisPrefix: prefix });
  const config = loadConfig(schedulerConfigSchema, { section: "scheduler", env: {}, flags });
  const log = createLogger("scheduler", "error");
  const scheduler = new Scheduler(config, log, await openBackends(config, log));
  const address = await scheduler.start();
  const agent = new Agent(loadConfig(agentConfigSchema, { section: "agent", env: {}, flags: { scheduler: address, workers: 2, calibrate: false } }), createLogger("agent", "error"));
  await agent.start();
  const client = new DistributeXClient(address);
  try {
    const { kernelId } = await client.registerKernel(await readFile(path.join(repoRoot(), "build/kernels/saxpy.wasm")), { name: "saxpy" });
    const n = work === "no-op" ? 0 : 4096;
    // The small kernel's job stays under the 64 MiB Kafka submission limit (32 KiB per task).
    const tasks = work === "no-op" ? TASKS : Math.min(TASKS, 1500);
    const inputs = Array.from({ length: tasks }, (_, i) => saxpyInput(1.5, new Float32Array(n).fill(i), new Float32Array(n)));
    // Warm up: kernel fetch, module compile, consumer groups.
    await client.run({ kernelId, inputs: inputs.slice(0, 50) });
    const latencies: number[] = [];
    const t0 = Date.now();
    const { jobId } = await client.submitJob({ kernelId, inputs });
    const job = await client.waitForJob(jobId, (ev) => {
      if (ev.task?.state === "TASK_STATE_SUCCEEDED") latencies.push(Number(ev.atMs) - t0);
    });
    const seconds = (Date.now() - t0) / 1000;
    if (job.state !== "JOB_STATE_SUCCEEDED") throw new Error(`bench job ended ${job.state}`);
    latencies.sort((a, b) => a - b);
    return { system: `distributex ${mode}`, work, tasks, seconds, tasksPerSecond: tasks / seconds, p50Ms: pct(latencies, 50), p99Ms: pct(latencies, 99) };
  } finally {
    client.close();
    await agent.stop(0);
    await scheduler.stop(0);
  }
}

async function bullmq(): Promise<Row> {
  const u = new URL(redisUrl);
  const connection = { host: u.hostname, port: Number(u.port || 6379) };
  const name = `bench-${Date.now().toString(36)}`;
  const queue = new Queue(name, { connection });
  const events = new QueueEvents(name, { connection });
  const latencies: number[] = [];
  let done = 0;
  let t0 = 0;
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  // Two workers with high concurrency: the same 2 cores and the same no-op work.
  const workers = [0, 1].map(() => new Worker(name, async () => ({}), { connection, concurrency: 100, removeOnComplete: { count: TASKS * 2 } }));
  for (const w of workers)
    w.on("completed", () => {
      latencies.push(Date.now() - t0);
      if (++done === TASKS) finish();
    });
  t0 = Date.now();
  for (let i = 0; i < TASKS; i += 1000) {
    await queue.addBulk(Array.from({ length: Math.min(1000, TASKS - i) }, (_, j) => ({ name: "noop", data: { i: i + j } })));
  }
  await finished;
  const seconds = (Date.now() - t0) / 1000;
  await Promise.all(workers.map((w) => w.close()));
  await events.close();
  await queue.obliterate({ force: true });
  await queue.close();
  latencies.sort((a, b) => a - b);
  return { system: "bullmq (same redis)", work: "no-op", tasks: TASKS, seconds, tasksPerSecond: TASKS / seconds, p50Ms: pct(latencies, 50), p99Ms: pct(latencies, 99) };
}

const rows: Row[] = [];
for (const run of [() => bullmq(), () => distx("memory", "no-op"), () => distx("kafka+redis", "no-op"), () => distx("memory", "saxpy-4k"), () => distx("kafka+redis", "saxpy-4k")]) {
  const row = await run();
  rows.push(row);
  console.log(JSON.stringify(row));
}
const base = rows.find((r) => r.system.startsWith("bullmq"))!.tasksPerSecond;
const md = [
  `# Queue bench (${new Date().toISOString()}, ${TASKS} tasks per run, one machine, 2 cores)`,
  "",
  "| system | work | tasks | tasks/s | × BullMQ | p50 ms | p99 ms |",
  "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
  ...rows.map((r) => `| ${r.system} | ${r.work} | ${r.tasks} | ${r.tasksPerSecond.toFixed(0)} | ${(r.tasksPerSecond / base).toFixed(2)} | ${r.p50Ms.toFixed(0)} | ${r.p99Ms.toFixed(0)} |`),
  "",
  "Latency is from the job's submission to each task's result being recorded (one job of all tasks), so it includes queueing behind earlier tasks.",
].join("\n");
await mkdir(path.join(repoRoot(), "bench/results"), { recursive: true });
await writeFile(path.join(repoRoot(), "bench/results/queue.json"), JSON.stringify({ tasks: TASKS, rows }, null, 2));
await writeFile(path.join(repoRoot(), "bench/results/queue.md"), md + "\n");
console.log(md);
process.exit(0);
