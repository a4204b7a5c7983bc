// `distx up` (a long-running local cluster) and `distx demo` (start, run a sample job, stop).
import { existsSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { DistributeXClient } from "../../client/index.js";
import { defaultDataDir } from "../../common/config.js";
import { builtKernelsDir } from "../../common/paths.js";
import { getExampleKernel } from "../../kernels/reference/index.js";
import { LocalCluster } from "../local-cluster.js";
import { fail, onShutdownSignal, parseIntOption, UsageError } from "../util.js";
import { printJobOutcome, submitAndWatch } from "./job-output.js";

export function registerClusterCommands(program: Command): void {
  program
    .command("up")
    .description("start a scheduler and local agents as separate processes, until Ctrl-C")
    .option("-a, --agents <n>", "agents to start", parseIntOption("--agents"), 2)
    .option("-w, --workers <n>", "workers per agent (0 = one per core)", parseIntOption("--workers"), 0)
    .option("-p, --port <port>", "scheduler port", parseIntOption("--port"), 7070)
    .option("--data-dir <dir>", "cluster data dir (default $DISTX_HOME or ~/.distx); the client profile goes there")
    .option("--admin-port <port>", "the scheduler's admin HTTP port (/dashboard, /metrics); 0 picks a free one", parseIntOption("--admin-port"), 0)
    .option("--insecure", "no TLS, no tokens (the scheduler warns every minute)")
    .action(async (opts: { agents: number; workers: number; port: number; adminPort: number; dataDir?: string; insecure?: boolean }) => {
      try {
        if (opts.agents < 1) throw new UsageError("--agents must be at least 1");
        let stopping = false;
        const cluster: LocalCluster = new LocalCluster({
          agents: opts.agents,
          workersPerAgent: opts.workers,
          port: opts.port,
          schedulerAdminPort: opts.adminPort,
          logs: "inherit",
          // Never exit silently: say which process ended and why; without a scheduler or any agent, stop.
          onUnexpectedExit: (proc, why) => {
            console.error(`distx up: ${why}`);
            const alive = cluster.processes.filter((p) => p.child.exitCode === null && p.child.signalCode === null);
            const lost = proc.name === "scheduler" ? "the scheduler is gone" : alive.every((p) => p.name === "scheduler") ? "no agent is left" : undefined;
            if (!lost || stopping) return;
            stopping = true;
            console.error(`distx up: ${lost}; stopping the rest and exiting with code 1`);
            process.exitCode = 1;
            void cluster.stop().then(() => process.exit(1));
          },
          dataDir: opts.dataDir ?? defaultDataDir(),
          writeProfile: true,
          insecure: opts.insecure === true,
        });
        onShutdownSignal(async () => {
          console.error("distx up: draining agents and stopping the scheduler…");
          await cluster.stop();
        });
        const address = await cluster.start();
        console.error(`distx up: scheduler at ${address} with ${opts.agents} agents; submit with \`distx submit -s ${address} --example mandelbrot\`; Ctrl-C stops`);
        // The scheduler logged its admin address before the agents joined, so this does not wait.
        const admin = await cluster.adminAddress("scheduler", 5000);
        console.error(`distx up: dashboard at http://${admin}/dashboard, metrics at http://${admin}/metrics`);
      } catch (err) {
        fail(err);
      }
    });

  program
    .command("demo")
    .description("start a local cluster, run sample jobs, print results and timing, stop")
    .option("-a, --agents <n>", "agents to start", parseIntOption("--agents"), 2)
    .option("-w, --workers <n>", "workers per agent (0 = one per core)", parseIntOption("--workers"), 1)
    .action(async (opts: { agents: number; workers: number }) => {
      // Beside the cluster data (~/.distx), not in the package: an installed one may be read-only.
      const logs = path.join(defaultDataDir(), "demo-logs");
      const cluster = new LocalCluster({ agents: opts.agents, workersPerAgent: opts.workers, logs });
      let client: DistributeXClient | undefined;
      try {
        if (!existsSync(path.join(builtKernelsDir(), "mandelbrot.wasm"))) throw new UsageError("example kernels are not built; run `npm run build`");
        const t0 = performance.now();
        const address = await cluster.start();
        console.log(`cluster: scheduler ${address}, ${opts.agents} agents × ${opts.workers} workers, separate processes (logs in ${path.relative(process.cwd(), logs)}) — up in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
        client = new DistributeXClient(address);
        for (const n of await client.listNodes()) {
          const p = n.profile!;
          console.log(`  ${n.nodeId}: ${p.cpu?.model}, ${p.cpu?.logicalCores} cores, ${p.gpus.length} GPUs, calibrated ${((p.calibration?.opsPerSecond ?? 0) / 1e9).toFixed(2)} Gop/s per worker`);
        }
        let ok = true;
        for (const [name, tasks] of [["mandelbrot", 32], ["montecarlo_pi", 16], ["gemm", 8]] as const) {
          const example = getExampleKernel(name);
          const { kernelId } = await client.registerKernelFile(path.join(builtKernelsDir(), `${name}.wasm`));
          const inputs = example.makeTasks({ tasks });
          console.log(`\n${name}: ${example.description}`);
          const { job, results, elapsedMs } = await submitAndWatch(client, { kernelId, inputs, name: `demo-${name}` }, process.stderr.isTTY === true);
          printJobOutcome(job, results, elapsedMs);
          const bad = results.filter((r, i) => !example.check(inputs[i]!, r.output).ok).length;
          console.log(`result: ${example.summarize(inputs, results.map((r) => r.output))}`);
          console.log(bad === 0 && job.state === "JOB_STATE_SUCCEEDED" ? `check: all ${results.length} outputs match the plain-JS reference` : `check: ${bad} outputs wrong`);
          ok &&= bad === 0 && job.state === "JOB_STATE_SUCCEEDED";
        }
        client.close();
        await cluster.stop();
        console.log(`\ndemo ${ok ? "finished" : "FAILED"}; cluster stopped cleanly`);
        process.exitCode = ok ? 0 : 1;
      } catch (err) {
        client?.close();
        await cluster.stop().catch(() => undefined);
        fail(err);
      }
    });
}
