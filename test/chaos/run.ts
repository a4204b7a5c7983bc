// A chaos run: start the cluster (rig.ts), run the workload (workload.ts) while the nemesis
// (nemesis.ts) injects faults, heal, read every job back, check the history (checker.ts) and write
// test-output/chaos/<run>/{history.jsonl,summary.md,report.json}.
//   npm run chaos -- --minutes 30 --seed 42 [--agents 3] [--clients 4] [--faults kill-agent,pause-agent]
// Exit status: 0 with no violations, 1 with violations, 2 when the harness itself failed.
import { writeFileSync, mkdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { repoRoot } from "../../common/paths.js";
import { check, type CheckReport } from "./checker.js";
import { FAULT_KINDS, HistoryRecorder, type FaultKind } from "./history.js";
import { Nemesis } from "./nemesis.js";
import { Rng } from "./prng.js";
import { ChaosRig } from "./rig.js";
import { renderSummary, type RunInfo } from "./summary.js";
import { contractHasRequestIds, countsOf, Workload } from "./workload.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ChaosOptions {
  minutes: number;
  seed: number;
  agents?: number;
  clients?: number;
  faults?: FaultKind[];
  /** Output folder; default test-output/chaos/<time>-seed<seed>. */
  out?: string;
  /** After the faults stop, how long acknowledged jobs get to finish. */
  settleMs?: number;
  quietMs?: [number, number];
  log?: (line: string) => void;
}

export interface ChaosResult {
  dir: string;
  report: CheckReport;
  summary: string;
}

export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  const run = `${new Date().toISOString().replace(/[:.]/g, "-")}-seed${o.seed}`;
  const dir = o.out ?? path.join(repoRoot(), "test-output", "chaos", run);
  mkdirSync(dir, { recursive: true });
  const history = new HistoryRecorder(path.join(dir, "history.jsonl"));
  const record = history.record.bind(history);
  const settings = { heartbeatIntervalMs: 500, agentTimeoutMs: 3000, leaseTtlMs: 2000, eventsMaxMessageBytes: 2 * 1024 * 1024 };
  const agents = o.agents ?? 3;
  const clients = o.clients ?? 4;
  const rng = new Rng(o.seed);
  const rig = new ChaosRig({ dir, agents, record, ...settings });
  const requestIds = contractHasRequestIds();
  const started = Date.now();
  log(`chaos: run ${run}: seed ${o.seed}, ${o.minutes} min, ${agents} agents, ${clients} clients; request ids ${requestIds ? "on" : "absent"}; output ${dir}`);
  let monitorStop = false;
  let monitor: Promise<void> | undefined;
  // Ctrl-C or a supervisor's TERM: take the cluster down (daemons, broker, Redis) rather than
  // leave it running as orphans, then exit as interrupted.
  const interrupted = (signal: NodeJS.Signals) => {
    log(`chaos: ${signal}: stopping the cluster`);
    void rig.stop().finally(() => process.exit(130));
  };
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);
  try {
    await rig.start();
    record({ type: "meta", seed: o.seed, minutes: o.minutes, requestIds, ...settings, agents: rig.agentNames, schedulers: rig.schedulerNames });
    log(`chaos: cluster up in ${((Date.now() - started) / 1000).toFixed(1)} s (schedulers ${rig.addresses.join(", ")}, broker ${rig.brokers}, redis ${rig.redisUrl})`);
    monitor = runMonitor(rig, record, () => monitorStop);
    const workload = new Workload(rig, rng.fork(1000), { clients, requestIds, followMs: 60_000, record });
    const nemesis = new Nemesis({ rig, workload, rng: rng.fork(2000), record, ...settings, kinds: o.faults, quietMs: o.quietMs ?? [2000, 5000] });
    const until = Date.now() + o.minutes * 60_000;
    const progress = setInterval(() => {
      const faults = history.events.filter((e) => e.type === "fault-start").length;
      log(`chaos: t=${Math.round(history.now() / 1000)} s: ${faults} faults, ${workload.acked.size} jobs acknowledged`);
    }, 30_000);
    try {
      await Promise.all([nemesis.run(until), workload.run(until)]);
    } finally {
      clearInterval(progress);
    }
    await workload.stop();
    const healedAt = history.now();
    log(`chaos: faults over; letting ${workload.acked.size} jobs settle`);
    await workload.settle(o.settleMs ?? 60_000, agents);
    await workload.finalReads();
    monitorStop = true;
    await monitor;
    record({ type: "end", healedAt });
  } finally {
    monitorStop = true;
    await monitor?.catch(() => undefined);
    await rig.stop().catch((err: Error) => log(`chaos: stopping the cluster: ${err.message}`));
    await history.close();
    process.off("SIGINT", interrupted);
    process.off("SIGTERM", interrupted);
  }
  const report = check(history.events);
  const info: RunInfo = {
    run,
    seed: o.seed,
    minutes: o.minutes,
    startedAt: new Date(started).toISOString(),
    machine: `${os.cpus().length}× ${os.cpus()[0]?.model ?? "cpu"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
    agents,
    clients,
    ...settings,
    wallMs: Date.now() - started,
  };
  const summary = renderSummary(info, report);
  writeFileSync(path.join(dir, "summary.md"), `${summary}\n`);
  writeFileSync(path.join(dir, "report.json"), JSON.stringify(report, null, 1));
  return { dir, report, summary };
}

/** Samples nodes and job progress every 500 ms from whichever scheduler answers. */
async function runMonitor(rig: ChaosRig, record: HistoryRecorder["record"], stopped: () => boolean): Promise<void> {
  let client = await rig.activeClient();
  while (!stopped()) {
    rig.checkBroker();
    try {
      client ??= await rig.activeClient();
      if (client) {
        const nodes = await client.listNodes(true);
        record({
          type: "nodes",
          nodes: nodes.map((n) => ({ agent: n.profile?.labels?.chaos ?? "?", nodeId: n.nodeId, state: n.state, registeredAtMs: n.registeredAtMs })),
        });
        const jobs = await client.listJobs(1_000_000);
        let done = 0;
        let pending = 0;
        for (const j of jobs) {
          const c = countsOf(j.counts);
          done += c.succeeded + c.failed + c.cancelled;
          if (!["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"].includes(j.state)) pending += c.pending + c.assigned + c.running;
        }
        record({ type: "progress", done, pending });
      }
    } catch {
      client?.close();
      client = undefined;
    }
    await sleep(500);
  }
  client?.close();
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      minutes: { type: "string", default: "2" },
      seed: { type: "string", default: "42" },
      agents: { type: "string", default: "3" },
      clients: { type: "string", default: "4" },
      faults: { type: "string" },
      out: { type: "string" },
      "settle-s": { type: "string", default: "60" },
    },
  });
  const faults = values.faults ? (values.faults.split(",") as FaultKind[]) : undefined;
  const unknown = faults?.filter((f) => !FAULT_KINDS.includes(f));
  if (unknown?.length) {
    console.error(`chaos: unknown fault kind(s) ${unknown.join(", ")}; known: ${FAULT_KINDS.join(", ")}`);
    process.exit(2);
  }
  const minutes = Number(values.minutes);
  const seed = Number(values.seed);
  if (!(minutes > 0) || !Number.isInteger(seed)) {
    console.error("chaos: --minutes must be > 0 and --seed an integer");
    process.exit(2);
  }
  const { dir, report, summary } = await runChaos({
    minutes,
    seed,
    agents: Number(values.agents),
    clients: Number(values.clients),
    faults,
    out: values.out,
    settleMs: Number(values["settle-s"]) * 1000,
  });
  console.log(`\n${summary}\n\nchaos: history, summary and report in ${dir}`);
  process.exit(report.violations.length ? 1 : 0);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: Error) => {
    console.error(`chaos: ${err.stack ?? err.message}`);
    process.exit(2);
  });
}
