// Client commands: kernel build/register, submit (with a progress bar), jobs, nodes, result, cancel.
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import type { Command } from "commander";
import { DistributeXClient } from "../../client/index.js";
import { hostPort } from "../../common/config.js";
import { builtKernelsDir } from "../../common/paths.js";
import { shortState } from "../../common/types.js";
import { printLogs, printLogsHint } from "./task-logs.js";
import { jobTable, printJobOutcome, submitAndWatch, writeOutputs } from "./job-output.js";
import { exampleKernelNames, getExampleKernel } from "../../kernels/reference/index.js";
import { buildGpuKernel, isGpuKernelSource } from "../../kernels/gpu/build.js";
import { expandKernelSources, KernelSourcesError } from "../../kernels/toolchain/sources.js";
import { fail, formatBytes, formatMs, parseIntOption, table as makeTable, UsageError } from "../util.js";

const DEFAULT_SCHEDULER = process.env.DISTX_SCHEDULER ?? "127.0.0.1:7070";

export function connect(address: string, retryDeadlineMs = 60_000): DistributeXClient {
  // An active scheduler and its standbys: calls and watches fail over between them.
  for (const a of address.split(",")) {
    const parsed = hostPort.safeParse(a);
    if (!parsed.success) throw new UsageError(`--scheduler ${JSON.stringify(address)}: ${parsed.error.issues[0]?.message}`);
  }
  return new DistributeXClient(address, { timeoutMs: 30_000, retry: retryDeadlineMs > 0 ? { deadlineMs: retryDeadlineMs } : false, ...credentialFlags() });
}

/** --ca / --token / --token-file / --insecure, read from the parsed command line (see security.ts). */
function credentialFlags(): typeof globalCredentials {
  return globalCredentials;
}

export let globalCredentials: { ca?: string; token?: string; tokenFile?: string; insecure?: boolean } = {};
const setGlobalCredentials = (c: typeof globalCredentials): void => void (globalCredentials = c);

/**
 * `submit` rides out a scheduler restart or failover (60 s by default: longer than a lease
 * takeover); a one-shot query gives up sooner, so a wrong address is said within seconds.
 */
export const schedulerOption = (cmd: Command, retryDeadlineMs = 5000): Command =>
  cmd
    .option("-s, --scheduler <host:port[,host:port…]>", "scheduler address, standbys after a comma (env DISTX_SCHEDULER)", DEFAULT_SCHEDULER)
    .option("--retry-deadline-ms <ms>", "retry calls and resume watches for this long when the scheduler is unreachable; 0 = never", parseIntOption("--retry-deadline-ms"), retryDeadlineMs)
    .option("--ca <file>", "cluster CA certificate (env DISTX_CA; default: the client profile in $DISTX_HOME or ~/.distx)")
    .option("--token <token>", "API token (env DISTX_TOKEN)")
    .option("--token-file <file>", "read the API token from this file (env DISTX_TOKEN_FILE)")
    .option("--insecure", "plain-text gRPC, for a scheduler started with --insecure")
    .hook("preAction", (c) => {
      const o = c.opts<{ ca?: string; token?: string; tokenFile?: string; insecure?: boolean }>();
      if (o.token !== undefined && o.tokenFile !== undefined) throw new UsageError("give --token or --token-file, not both");
      if (o.token !== undefined && !o.token.trim()) throw new UsageError("--token is empty");
      // The file is read by the client (client/credentials.ts), which says clearly when it cannot be.
      setGlobalCredentials({
        ...(o.ca ? { ca: o.ca } : {}),
        ...(o.token ? { token: o.token.trim() } : {}),
        ...(o.tokenFile ? { tokenFile: o.tokenFile } : {}),
        ...(o.insecure ? { insecure: true } : {}),
      });
    });

function parseUnschedulable(value: string): "wait" | "fail" {
  if (value === "wait" || value === "fail") return value;
  throw new UsageError(`--unschedulable must be wait or fail, got ${JSON.stringify(value)}`);
}

function parseGpuFallback(value: string): "wait" | "cpu" | "reject" {
  if (value === "wait" || value === "cpu" || value === "reject") return value;
  throw new UsageError(`--gpu-fallback must be wait, cpu or reject, got ${JSON.stringify(value)}`);
}

async function readInputs(files: string[], dir: string | undefined): Promise<Uint8Array[]> {
  const paths = [...files];
  if (dir) {
    const names = (await readdir(dir)).sort();
    for (const n of names) if ((await stat(path.join(dir, n))).isFile()) paths.push(path.join(dir, n));
  }
  return Promise.all(paths.map((p) => readFile(p)));
}

export function registerClientCommands(program: Command): void {
  const kernel = program.command("kernel").description("build and register kernels");
  kernel
    .command("build")
    .description("compile kernels to .wasm plus a manifest (name, entry, ABI, sha256): AssemblyScript .ts, C .c (clang), Cargo project folders (rustc), gpu.js")
    .argument("<files...>", "kernel sources: .ts, .c, a Cargo project folder (or its Cargo.toml), .gpu.js, or a folder of them (kernels/c)")
    .option("-o, --out-dir <dir>", "where to write <name>.wasm and <name>.manifest.json", "build/kernels")
    .option("--debug", "build without optimisation")
    .action(async (files: string[], opts: { outDir: string; debug?: boolean }) => {
      try {
        for (const file of files) if (!existsSync(file)) throw new UsageError(`no such file: ${file}`);
        const sources = await expandKernelSources(files).catch((err: unknown) => {
          throw err instanceof KernelSourcesError ? new UsageError(err.message) : err;
        });
        for (const file of sources) {
          if (isGpuKernelSource(file)) {
            // gpu.js kernels: <name>.gpu.json (the registered bytes) + <name>.manifest.json, kind gpu.
            const g = await buildGpuKernel(file, { outDir: opts.outDir });
            console.log(`${g.manifest.name.padEnd(16)} ${g.modulePath}  ${formatBytes(g.manifest.sizeBytes).padStart(9)}  sha256 ${g.manifest.sha256}`);
            continue;
          }
          // Loaded here, not at the top: the AssemblyScript compiler (binaryen) is large, and every
          // `distx scheduler` / `distx agent` start would otherwise pay for it.
          const { buildKernel } = await import("../../kernels/toolchain/build.js");
          const { wasmPath, manifest } = await buildKernel(file, { outDir: opts.outDir, optimize: !opts.debug });
          console.log(`${manifest.name.padEnd(16)} ${path.relative(process.cwd(), wasmPath)}  ${formatBytes(manifest.sizeBytes).padStart(9)}  sha256 ${manifest.sha256}`);
        }
      } catch (err) {
        fail(err);
      }
    });
  schedulerOption(
    kernel
      .command("register")
      .description("register a built .wasm kernel with the scheduler; prints its id")
      .argument("<wasm>", "a .wasm file (its .manifest.json beside it names it)"),
  ).action(async (wasm: string, opts: { scheduler: string; retryDeadlineMs: number }) => {
    try {
      const client = connect(opts.scheduler, opts.retryDeadlineMs);
      const r = await client.registerKernelFile(wasm);
      console.log(r.kernelId);
      client.close();
    } catch (err) {
      fail(err);
    }
  });

  schedulerOption(
    program
      .command("submit")
      .description("submit a job and show its progress until it ends")
      .option("-e, --example <name>", `run an example kernel: ${exampleKernelNames.join(", ")}`)
      .option("-k, --kernel <id|file.wasm>", "a registered kernel id, or a .wasm file to register")
      .option("-i, --input <file...>", "task input files, one task each")
      .option("--input-dir <dir>", "a folder whose files are the task inputs, in name order")
      .option("--shared-input <name=file...>", "inputs every task reads (sent once, fetched once per agent), in order; kernels read them by index")
      .option("--shared", "with --example: send the data every task reads once, as a shared input (gemm: B)")
      .option("-t, --tasks <n>", "tasks for --example", parseIntOption("--tasks"), 16)
      .option("--size <n>", "work size for --example (see each kernel)", parseIntOption("--size"))
      .option("--priority <n>", "-100..100, higher first", parseIntOption("--priority"), 0)
      .option("--timeout-ms <ms>", "per-task timeout", parseIntOption("--timeout-ms"), 0)
      .option("--memory-mb <mib>", "kernel memory cap per task", parseIntOption("--memory-mb"), 0)
      .option("--gpu-fallback <wait|cpu|reject>", "gpu kernels with no GPU agent: wait, run in gpu.js cpu mode, or reject", "wait")
      .option("--name <name>", "a label for listings")
      .option("--request-id <id>", "idempotency key: a retry with the same id returns the same job, never a second run (default: a new UUID)")
      .option("--unschedulable <wait|fail>", "when no node could ever take the job: wait for one (the reason is shown) or fail at once", "wait")
      .option("--out-dir <dir>", "write each task's output to <dir>/<index>.bin")
      .option("--no-wait", "print the job id and return at once")
      .option("--no-progress", "no progress bar"),
    60_000,
  ).action(async (opts) => {
    try {
      const client = connect(opts.scheduler, opts.retryDeadlineMs);
      let kernelId: string;
      let inputs: Uint8Array[];
      let sharedInputs: { name: string; data: Uint8Array }[] = [];
      const example = opts.example ? getExampleKernelOrUsage(opts.example) : undefined;
      if (example) {
        const wasm = path.join(builtKernelsDir(), `${example.name}.wasm`);
        if (!existsSync(wasm)) throw new UsageError(`${wasm} is missing; run \`npm run build:kernels\``);
        kernelId = (await client.registerKernelFile(wasm)).kernelId;
        if (opts.shared) {
          if (!example.shared) throw new UsageError(`--shared: the ${example.name} example has no data that every task reads`);
          ({ inputs, shared: sharedInputs } = example.shared.makeTasks({ tasks: opts.tasks, size: opts.size }));
        } else inputs = example.makeTasks({ tasks: opts.tasks, size: opts.size });
      } else {
        if (!opts.kernel) throw new UsageError("give --example NAME, or --kernel with --input/--input-dir");
        kernelId = /^[0-9a-f]{64}$/.test(opts.kernel) ? opts.kernel : (await client.registerKernelFile(opts.kernel)).kernelId;
        inputs = await readInputs(opts.input ?? [], opts.inputDir);
        if (inputs.length === 0) throw new UsageError("no task inputs: give --input FILE... or --input-dir DIR");
      }
      for (const spec of (opts.sharedInput ?? []) as string[]) {
        const eq = spec.indexOf("=");
        if (eq < 1) throw new UsageError(`--shared-input ${spec}: write it as name=file`);
        sharedInputs.push({ name: spec.slice(0, eq), data: await readFile(spec.slice(eq + 1)) });
      }
      const submit = {
        kernelId,
        inputs,
        ...(sharedInputs.length > 0 ? { sharedInputs } : {}),
        priority: opts.priority,
        timeoutMs: opts.timeoutMs,
        name: opts.name ?? example?.name ?? "",
        resources: { memoryBytes: opts.memoryMb * 1024 * 1024 },
        gpuFallback: parseGpuFallback(opts.gpuFallback),
        // One id for every attempt of this submit, so the client's retries never run it twice.
        requestId: opts.requestId ?? randomUUID(),
        unschedulable: parseUnschedulable(opts.unschedulable),
      };
      if (!opts.wait) {
        const { jobId } = await client.submitJob(submit);
        console.log(jobId);
        client.close();
        return;
      }
      const { job, results, elapsedMs } = await submitAndWatch(client, submit, opts.progress && process.stderr.isTTY !== false);
      printJobOutcome(job, results, elapsedMs);
      if (example && job.state === "JOB_STATE_SUCCEEDED") {
        const outputs = results.map((r) => r.output);
        // Checked against the self-contained form of each task (B put back in, for gemm).
        const whole = sharedInputs.length > 0 && example.shared ? inputs.map((input) => example.shared!.inline(input, sharedInputs.map((s) => s.data))) : inputs;
        const bad = results.map((r, i) => example.check(whole[i]!, r.output)).filter((c) => !c.ok);
        console.log(`result: ${example.summarize(whole, outputs)}`);
        console.log(bad.length === 0 ? `check: all ${results.length} task outputs match the JS reference` : `check: ${bad.length} outputs differ: ${bad[0]!.detail}`);
        if (bad.length) process.exitCode = 1;
      }
      if (opts.outDir) await writeOutputs(opts.outDir, results);
      if (job.state !== "JOB_STATE_SUCCEEDED") process.exitCode = 1;
      client.close();
    } catch (err) {
      fail(err);
    }
  });

  schedulerOption(
    program.command("jobs").description("list recent jobs").option("-n, --limit <n>", "how many", parseIntOption("--limit"), 20).option("--json", "JSON output"),
  ).action(async (opts) => {
    try {
      const client = connect(opts.scheduler, opts.retryDeadlineMs);
      const jobs = await client.listJobs(opts.limit);
      console.log(opts.json ? JSON.stringify(jobs, null, 2) : jobs.length ? jobTable(jobs) : "no jobs");
      client.close();
    } catch (err) {
      fail(err);
    }
  });

  schedulerOption(
    program.command("nodes").description("list agents with their hardware and load").option("-a, --all", "include nodes that are down").option("--json", "JSON output"),
  ).action(async (opts) => {
    try {
      const client = connect(opts.scheduler, opts.retryDeadlineMs);
      const nodes = await client.listNodes(Boolean(opts.all));
      if (opts.json) console.log(JSON.stringify(nodes, null, 2));
      else if (nodes.length === 0) console.log("no nodes");
      else {
        const table = makeTable(["node", "state", "version", "host", "cpu", "cores", "simd", "memory", "gpus", "workers", "speed (Gop/s)", "cpu %", "host %", "tasks", "done"]);
        for (const n of nodes) {
          const p = n.profile!;
          table.push([
            n.nodeId,
            // A node backing off for its host's own load is READY but takes no new work: say so, and why.
            n.backingOff ? `${shortState(n.state)}, backing off (${n.backingOff})` : shortState(n.state),
            n.agentVersion || "-",
            p.hostname,
            (p.cpu?.model ?? "").slice(0, 28),
            `${p.cpu?.physicalCores}/${p.cpu?.logicalCores}`,
            (p.cpu?.simd ?? []).filter((s) => /^(sse4_2|avx|avx2|avx512f|fma|neon|asimd|sve)$/.test(s)).join(" "),
            formatBytes(Number(p.memoryBytes)),
            p.gpus.length ? p.gpus.map((g) => `${g.model} (${formatBytes(Number(g.memoryBytes))})`).join(", ") : "none",
            n.reservedCores ? `${p.workers} (${n.reservedCores} reserved)` : p.workers,
            p.calibration ? (p.calibration.opsPerSecond / 1e9).toFixed(2) : "-",
            n.load ? (n.load.cpuUtilization * 100).toFixed(0) : "-",
            // The host's own load: all CPU use minus the agent's (its kernels').
            n.load ? (Math.max(0, n.load.cpuUtilization - n.load.agentCpuUtilization) * 100).toFixed(0) : "-",
            n.assignedTasks,
            n.completedTasks,
          ]);
        }
        console.log(table.toString());
      }
      client.close();
    } catch (err) {
      fail(err);
    }
  });

  schedulerOption(
    program
      .command("result")
      .description("show a job's per-task results")
      .argument("<job-id>")
      .option("--out-dir <dir>", "write each task's output to <dir>/<index>.bin")
      .option("--logs", "also print each task's kernel log lines (env.log), prefixed by the task index")
      .option("--json", "JSON output (outputs in base64)"),
  ).action(async (jobId: string, opts) => {
    try {
      const client = connect(opts.scheduler, opts.retryDeadlineMs);
      const job = await client.getJob(jobId);
      const results = await client.getResults(jobId);
      if (opts.json) {
        console.log(JSON.stringify({ job, results: results.map((r) => ({ ...r, output: Buffer.from(r.output).toString("base64") })) }, null, 2));
      } else {
        console.log(jobTable([job]));
        const table = makeTable(["task", "state", "node", "backend", "attempt", "run time", "output"]);
        for (const r of results) {
          table.push([
            r.taskIndex,
            shortState(r.state),
            r.nodeId || "-",
            r.backend || "-",
            r.attempt,
            formatMs(r.runMs),
            r.error?.code ? `${r.error.code}: ${r.error.message}`.slice(0, 60) : `${formatBytes(r.output.byteLength)} ${Buffer.from(r.output.subarray(0, 8)).toString("hex")}…`,
          ]);
        }
        console.log(table.toString());
        if (opts.logs) printLogs(results);
        else printLogsHint(jobId, results);
      }
      if (opts.outDir) await writeOutputs(opts.outDir, results);
      client.close();
    } catch (err) {
      fail(err);
    }
  });

  schedulerOption(program.command("cancel").description("cancel a job; running tasks are stopped on their agents").argument("<job-id>")).action(
    async (jobId: string, opts) => {
      try {
        const client = connect(opts.scheduler, opts.retryDeadlineMs);
        const job = await client.cancelJob(jobId);
        console.log(`${job.jobId} ${shortState(job.state)}`);
        client.close();
      } catch (err) {
        fail(err);
      }
    },
  );
}

function getExampleKernelOrUsage(name: string) {
  try {
    return getExampleKernel(name);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
