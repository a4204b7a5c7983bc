/**
 * Does the heartbeat's own information (running and queued tasks, the agent's CPU share) help
 * forecast a node's utilisation? Issue #14: the exogenous ARX member (scheduler/forecast/arx-member.ts).
 *
 *   npx tsx bench/forecast/live-exog.ts bench/forecast/recordings/*.ndjson [--out FILE.json]
 *   npx tsx bench/forecast/live-exog.ts TRAIN.ndjson... --validate HELD.ndjson [--validate ...] [--out FILE.json]
 *
 * The discipline of live-tune.ts: each recording is split at 70 % of its span; every candidate
 * (ARX lags × input set, on top of the utilisation forecaster's settings) is replayed over the
 * training part only (nothing after the split is replayed) and scored like the gauge; the lowest
 * mean training ratio is the choice. Then the held-out part (last 30 %) is scored for the current
 * settings (no inputs), the choice and the best candidate with inputs: per recording, their mean,
 * and pooled over all recordings (total model error / total naive error, the gauge's pooling).
 * With --validate: whole recordings instead of a split. Every candidate is replayed over each
 * training recording whole (the gauge at its end), the lowest mean is the choice, and every
 * candidate is then scored whole on the --validate recordings, which took no part in the choice.
 */
import { writeFileSync } from "node:fs";
import { relative, resolve } from "node:path";
import { repoRoot } from "../../common/paths.js";
import { pooledErrorRatio, type ScoredAccuracy } from "../../scheduler/forecast/index.js";
import { UTILIZATION_FORECASTER, UTILIZATION_INPUTS, type UtilizationInputs } from "../../scheduler/placement/load-model.js";
import type { RecordedLoad } from "../../scheduler/placement/load-recorder.js";
import { readRecording, replayScore, splitTime, type LiveForecasterOptions } from "./live-replay.js";

const argv = process.argv.slice(2);
const outIdx = argv.indexOf("--out");
const valued = new Set(argv.flatMap((a, i) => (a === "--out" || a === "--validate" ? [i + 1] : [])));
const files = argv.filter((a, i) => !a.startsWith("--") && !valued.has(i));
const validateFiles = argv.flatMap((a, i) => (a === "--validate" && argv[i + 1] ? [argv[i + 1]!] : []));
if (files.length === 0) throw new Error("usage: live-exog.ts RECORDING.ndjson [...] [--validate HELD.ndjson ...] [--out FILE]");
const TRAIN_FRACTION = 0.7;
const root = repoRoot();

const own = (a: number) => Math.max(0, a);
const lvl = (y: number) => Math.min(1, Math.max(0, y));
const idle = (r: number, q: number) => (r + q === 0 ? 1 : 0);
/** Input sets: what the ARX member is given with each sample. */
const INPUT_SETS: Record<string, UtilizationInputs> = {
  "running, queued, own": (s) => [s.runningTasks, s.queuedTasks, own(s.agentCpuUtilization)],
  "running, queued, own, idle×own (scheduler's)": UTILIZATION_INPUTS,
  "busy, own, idle×own": (s) => [1 - idle(s.runningTasks, s.queuedTasks), own(s.agentCpuUtilization), idle(s.runningTasks, s.queuedTasks) * own(s.agentCpuUtilization)],
  "busy, queued>0": (s) => [1 - idle(s.runningTasks, s.queuedTasks), s.queuedTasks > 0 ? 1 : 0],
  // The level itself (the sample's utilisation), alone and by state: lets the ARX revert to a
  // different level when idle than when busy, which relative lags cannot express.
  "busy, level, busy×level": (s) => {
    const b = 1 - idle(s.runningTasks, s.queuedTasks);
    const y = lvl(s.cpuUtilization);
    return [b, y, b * y];
  },
  "busy, level, busy×level, own, idle×own": (s) => {
    const b = 1 - idle(s.runningTasks, s.queuedTasks);
    const y = lvl(s.cpuUtilization);
    const o = own(s.agentCpuUtilization);
    return [b, y, b * y, o, (1 - b) * o];
  },
  "level": (s) => [lvl(s.cpuUtilization)],
};
const model = UTILIZATION_FORECASTER.model!;
const candidates: { name: string; options: LiveForecasterOptions; inputs: UtilizationInputs | null }[] = [
  // The scheduler's settings without inputs (its default until the pinned runs of 2026-11-29).
  { name: "current (no inputs)", options: UTILIZATION_FORECASTER, inputs: null },
];
for (const [setName, inputs] of Object.entries(INPUT_SETS)) {
  for (const lags of [1, 4, 12]) candidates.push({ name: `ARX lags ${lags}: ${setName}`, options: { model: { ...model, arxLags: lags } }, inputs });
}
// Each input's change since the previous step (a burst that just ended or began), with the levels and alone.
for (const [kind, setName] of [["both", "busy"], ["both", "busy, own"], ["changes", "busy"], ["changes", "busy, own"], ["changes", "running, queued, own"]] as const) {
  const inputs: UtilizationInputs =
    setName === "busy"
      ? (s) => [1 - idle(s.runningTasks, s.queuedTasks)]
      : setName === "busy, own"
        ? (s) => [1 - idle(s.runningTasks, s.queuedTasks), own(s.agentCpuUtilization)]
        : INPUT_SETS["running, queued, own"]!;
  for (const lags of [1, 4, 12]) {
    candidates.push({ name: `ARX lags ${lags}, ${kind}: ${setName}`, options: { model: { ...model, arxLags: lags, arxInputs: kind } }, inputs });
  }
}

const recordings = files.map((f) => {
  const recs = readRecording(f);
  return { file: relative(root, resolve(f)), recs, split: splitTime(recs, TRAIN_FRACTION) };
});
const mean = (xs: number[]) => {
  const ok = xs.filter((x) => Number.isFinite(x));
  return ok.length > 0 ? ok.reduce((a, b) => a + b, 0) / ok.length : Number.NaN;
};
if (validateFiles.length > 0) {
  // Before the split replays below, which this mode does not use.
  wholeRuns();
  await new Promise<void>((done) => process.stdout.write("", () => done())); // flushed before exit (a pipe writes async)
  process.exit(0);
}

const trainOf = (c: (typeof candidates)[number]) => recordings.map((r) => replayScore(r.recs, 1000, c.options, r.split, r.split, c.inputs));
const scored = candidates.map((c) => {
  const runs = trainOf(c);
  const per = runs.map((s) => s.all);
  const pooled = pooledErrorRatio(runs.flatMap((s): ScoredAccuracy[] => s.entries.all));
  console.error(`${c.name}: train mean ${mean(per).toFixed(4)} pooled ${pooled.toFixed(4)} | ${per.map((x) => x.toFixed(3)).join(" ")}`);
  return { ...c, train: mean(per), trainPooled: pooled, perRecording: per };
});
let best = scored[0]!;
for (const c of scored) if (c.train < best.train) best = c;
// The best candidate with inputs, reported held-out too even when it is not the choice.
let bestArx = scored[1]!;
for (const c of scored.slice(1)) if (c.train < bestArx.train) bestArx = c;

// Held-out: whole replay, forecasts scored after the split (the training part is the same replay).
const heldOut = (c: (typeof candidates)[number]) => {
  const runs = recordings.map((r) => replayScore(r.recs, 1000, c.options, r.split, Number.POSITIVE_INFINITY, c.inputs));
  return {
    perRecording: runs.map((s) => s.validation),
    mean: mean(runs.map((s) => s.validation)),
    pooled: pooledErrorRatio(runs.flatMap((s) => s.entries.validation)),
  };
};
/**
 * Is the information there at all? Per recording: burst ends (a node busy, then idle for the next
 * 4 samples), the agent's own share just before, the host CPU's mean change 1 and 3 samples
 * after; and a fixed own-work forecast (background now + own share if busy) against last-value.
 */
function signal(recs: readonly RecordedLoad[]) {
  const ends: number[][] = [];
  let ownWork = 0;
  let naive = 0;
  const nodes = new Map<string, RecordedLoad[]>();
  for (const r of recs) nodes.set(r.node, [...(nodes.get(r.node) ?? []), r]);
  for (const rs of nodes.values()) {
    const y = rs.map((r) => lvl(r.cpu));
    const busy = rs.map((r) => r.running + r.queued > 0);
    for (let t = 1; t + 3 < rs.length; t++) {
      if (busy[t - 1] && !busy.slice(t, t + 4).some(Boolean)) ends.push([own(rs[t - 1]!.agentCpu), y[t + 1]! - y[t]!, y[t + 3]! - y[t]!]);
    }
    for (const h of [1, 3, 6, 12]) {
      for (let t = 0; t + h < rs.length; t++) {
        const o = own(rs[t]!.agentCpu);
        ownWork += Math.abs(y[t + h]! - lvl(y[t]! - o + (busy[t] ? o : 0)));
        naive += Math.abs(y[t + h]! - y[t]!);
      }
    }
  }
  const avg = (k: number) => (ends.length > 0 ? ends.reduce((a, e) => a + e[k]!, 0) / ends.length : Number.NaN);
  return { burstEnds: ends.length, ownShareBefore: avg(0), change1: avg(1), change3: avg(2), ownWorkVsNaive: naive > 0 ? ownWork / naive : Number.NaN };
}

/** --validate: choose on whole training recordings, score every candidate whole on the held-out ones. */
function wholeRuns(): void {
  const held = validateFiles.map((f) => ({ file: relative(root, resolve(f)), recs: readRecording(f) }));
  const whole = (recs: readonly RecordedLoad[], c: (typeof candidates)[number]) => replayScore(recs, 1000, c.options, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY, c.inputs).all;
  const rows = candidates.map((c) => {
    const train = recordings.map((r) => whole(r.recs, c));
    const validation = held.map((r) => whole(r.recs, c));
    console.error(`${c.name}: train ${train.map((x) => x.toFixed(4)).join(" ")} | validation ${validation.map((x) => x.toFixed(4)).join(" ")}`);
    return { name: c.name, options: c.options, train, trainMean: mean(train), validation, validationMean: mean(validation) };
  });
  let chosen = rows[0]!;
  for (const r of rows) if (r.trainMean < chosen.trainMean) chosen = r;
  const result = {
    comment: "Written by bench/forecast/live-exog.ts --validate: each candidate replayed over whole recordings; chosen on the training recordings' mean whole-run ratio, then scored on the held-out recordings.",
    generatedAt: new Date().toISOString(),
    training: recordings.map((r) => r.file),
    validation: held.map((r) => r.file),
    current: rows[0],
    chosen,
    candidates: rows,
    signal: [...recordings, ...held].map((r) => ({ file: r.file, ...signal(r.recs) })),
  };
  if (outIdx >= 0) writeFileSync(resolve(argv[outIdx + 1]!), JSON.stringify(result, null, 2) + "\n");
  console.log(JSON.stringify({ ...result, candidates: undefined }, null, 2));
}

const report = (c: (typeof scored)[number]) => ({ name: c.name, options: c.options, train: { perRecording: c.perRecording, mean: c.train, pooled: c.trainPooled }, heldOut: heldOut(c) });
const result = {
  comment: "Written by bench/forecast/live-exog.ts: candidates chosen on the first 70 % of each recording (mean training ratio); held-out = last 30 %, scored after the choice.",
  generatedAt: new Date().toISOString(),
  recordings: recordings.map((r) => r.file),
  current: report(scored[0]!),
  chosen: report(best),
  bestWithInputs: report(bestArx),
  candidates: scored.map((c) => ({ name: c.name, trainMean: c.train, trainPooled: c.trainPooled })),
  signal: recordings.map((r) => ({ file: r.file, ...signal(r.recs) })),
};
if (outIdx >= 0) writeFileSync(resolve(argv[outIdx + 1]!), JSON.stringify(result, null, 2) + "\n");
console.log(JSON.stringify({ ...result, candidates: undefined }, null, 2));
