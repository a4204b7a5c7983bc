// What a security feature costs on the Kafka path: no-op throughput with this build against a
// baseline build without the feature (BENCH_BASELINE_CLI=<its dist/cli/main.js>, e.g. a worktree
// of the commit before), rounds interleaved in the same run, plus the feature's CPU per record
// measured in this process. Used for signed task events and sealed assignments (bench/queue/run.ts).
import { X509Certificate } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { NodeKeyRing, seal, sealRecipient } from "../../common/record-seal.js";
import { recordSigner } from "../../common/record-signature.js";
import { repoRoot } from "../../common/paths.js";
import { createCa, createCsr, signNodeCsr } from "../../scheduler/auth/pki.js";
import { RecordVerifier } from "../../scheduler/auth/record-verifier.js";

/** The parts of a queue bench row this comparison reads. */
export interface CostRow {
  tasksPerSecond: number;
  cpuByProcess?: Record<string, number>;
  eventRecords?: number;
  assignmentRecords?: number;
}

/** A record operation's CPU per record on both sides, measured here (µs). */
export interface RecordCost {
  bytes: number;
  n: number;
  /** The side that writes the record (agent for events, scheduler for assignments). */
  writerUs: number;
  readerUs: number;
}

export interface Feature {
  /** File stem under bench/results/ and the key of this build's rows. */
  file: string;
  title: string;
  thisBuild: string;
  baselineBuild: string;
  /** Which records carry the feature, and the row field counting them. */
  records: { field: "eventRecords" | "assignmentRecords"; what: string; writer: "agent" | "scheduler"; reader: "agent" | "scheduler"; verbs: [string, string] };
  perRecord: (bytes: number) => Promise<RecordCost>;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const cpuMs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

export async function compareBuilds(feature: Feature, opts: { rounds: number; tasks: number; baselineCli: string; run: (cli?: string) => Promise<CostRow> }): Promise<never> {
  const load0 = os.loadavg();
  const through: Record<"feature" | "baseline", CostRow[]> = { feature: [], baseline: [] };
  for (let i = 0; i < opts.rounds; i++) {
    for (const k of i % 2 ? (["baseline", "feature"] as const) : (["feature", "baseline"] as const)) {
      const row = await opts.run(k === "baseline" ? opts.baselineCli : undefined);
      console.log(JSON.stringify({ build: k === "feature" ? feature.file : k, ...row }));
      through[k].push(row);
    }
  }
  const load1 = os.loadavg();
  const tps = (k: "feature" | "baseline") => median(through[k].map((r) => r.tasksPerSecond));
  // Warm-up tasks (500) write records too.
  const per1k = (k: "feature" | "baseline") => (median(through[k].map((r) => r[feature.records.field] ?? NaN)) * 1000) / (opts.tasks + 500);
  // 4 KiB: larger than a no-op turn's record, so an upper bound.
  const cost = await feature.perRecord(4096);
  const cpu = (k: "feature" | "baseline", proc: string) => median(through[k].map((r) => Object.entries(r.cpuByProcess ?? {}).find(([n]) => n.startsWith(proc))?.[1] ?? NaN));
  const load = (l: number[]) => l.map((x) => x.toFixed(1)).join(" / ");
  const { what, writer, reader, verbs } = feature.records;
  const md = [
    `# ${feature.title} (${new Date().toISOString()}, ${os.cpus()[0]?.model ?? "?"} × ${os.cpus().length}, Node ${process.version})`,
    "",
    `Load average (1 / 5 / 15 min) at start ${load(load0)}, at end ${load(load1)}: a shared machine, so the comparison is made inside one run.`,
    "",
    `${opts.tasks} no-op tasks submitted at once, Kafka + Redis, TLS + tokens (the default), one agent with 2 workers; ${opts.rounds} rounds, the two builds interleaved, median. Baseline: ${opts.baselineCli}.`,
    "",
    "| build | no-op tasks/s | rounds | × baseline | CPU scheduler ms / 1k tasks | CPU agent ms / 1k tasks |",
    "| --- | ---: | --- | ---: | ---: | ---: |",
    ...(["baseline", "feature"] as const).map(
      (k) => `| ${k === "feature" ? feature.thisBuild : feature.baselineBuild} | ${tps(k).toFixed(0)} | ${through[k].map((r) => r.tasksPerSecond.toFixed(0)).join(", ")} | ${(tps(k) / tps("baseline")).toFixed(3)} | ${cpu(k, "scheduler").toFixed(0)} | ${cpu(k, "agent").toFixed(0)} |`,
    ),
    "",
    `${what} per 1,000 tasks (warm-up included): this build ${per1k("feature").toFixed(0)}, baseline ${per1k("baseline").toFixed(0)}.`,
    `One record, measured in this process at the end of the run (${cost.bytes}-byte value, ${cost.n} records): ${verbs[0]} ${cost.writerUs.toFixed(0)} µs (${writer}), ${verbs[1]} ${cost.readerUs.toFixed(0)} µs (${reader}), CPU,`,
    `i.e. about ${((per1k("feature") * cost.writerUs) / 1000).toFixed(1)} ms of ${writer} CPU and ${((per1k("feature") * cost.readerUs) / 1000).toFixed(1)} ms of ${reader} CPU per 1,000 tasks.`,
  ].join("\n");
  console.log(md);
  await mkdir(path.join(repoRoot(), "bench/results"), { recursive: true });
  const out = path.join(repoRoot(), "bench/results", feature.file);
  await writeFile(`${out}.json`, JSON.stringify({ tasks: opts.tasks, baselineCli: opts.baselineCli, loadAverage: { start: load0, end: load1 }, through, perRecord: cost }, null, 2));
  await writeFile(`${out}.md`, md + "\n");
  process.exit(0);
}

/** A real node certificate from a fresh CA, for the per-record costs. */
async function benchIdentity(nodeId: string) {
  const ca = await createCa("bench CA");
  const csr = await createCsr();
  return { ca, identity: { keyPem: csr.keyPem, certPem: (await signNodeCsr(ca.certPem, ca.keyPem, csr.csrPem, nodeId)).certPem } };
}

/**
 * CPU µs per record of writing `n` records of `bytes`, and of reading each back, one at a time
 * (so work on the thread pool lands in this process's CPU time just the same).
 */
async function recordCost<W>(bytes: number, n: number, write: (value: Buffer) => W, read: (value: Buffer, written: W) => boolean | Promise<boolean>): Promise<RecordCost> {
  const value = Buffer.alloc(Math.max(1, bytes), 7);
  let c0 = cpuMs();
  const written: W[] = [];
  for (let i = 0; i < n; i++) written.push(write(value));
  const writerUs = (cpuMs() - c0) / n;
  c0 = cpuMs();
  for (const w of written) if (!(await read(value, w))) throw new Error("a bench record did not read back");
  return { bytes, n, writerUs, readerUs: (cpuMs() - c0) / n };
}

export const signedEvents: Feature = {
  file: "queue-kafka-signing",
  title: "Cost of signed Kafka records",
  thisBuild: "signed records (this build)",
  baselineBuild: "unsigned (baseline build)",
  records: { field: "eventRecords", what: "Task-event records (one turn's updates each)", writer: "agent", reader: "scheduler", verbs: ["sign", "verify"] },
  async perRecord(bytes, n = 2000) {
    const nodeId = "node-00c0ffee";
    const { ca, identity } = await benchIdentity(nodeId);
    const signer = recordSigner(() => identity);
    const verifier = new RecordVerifier(() => [new X509Certificate(ca.certPem)], { isRevoked: () => false });
    return recordCost(
      bytes,
      n,
      (value) => signer.headers("bench.task-events", nodeId, value),
      async (value, headers) => !(await verifier.verify("bench.task-events", Buffer.from(nodeId), value, headers)).rejected,
    );
  },
};

export const sealedAssignments: Feature = {
  file: "queue-kafka-sealing",
  title: "Cost of sealed assignments records",
  thisBuild: "sealed assignments (this build)",
  baselineBuild: "in clear (baseline build)",
  records: { field: "assignmentRecords", what: "Assignments records (one dispatch round's batch each)", writer: "scheduler", reader: "agent", verbs: ["seal", "open"] },
  async perRecord(bytes, n = 2000) {
    const nodeId = "node-00c0ffee";
    const { identity } = await benchIdentity(nodeId);
    const to = sealRecipient(identity.certPem);
    const ring = new NodeKeyRing(() => identity);
    return recordCost(
      bytes,
      n,
      (value) => seal("bench.assignments", nodeId, value, to),
      (_value, sealed) => !ring.open("bench.assignments", nodeId, sealed.value, sealed.headers).refused,
    );
  },
};
