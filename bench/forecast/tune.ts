/**
 * Chooses forecaster settings on the training part of the fixed split only.
 *
 *   npx tsx bench/forecast/tune.ts [--data DIR] [--split bench/forecast/split.json]
 *
 * Every candidate of split.json is replayed up to each series' split point (validation
 * samples are never read) and scored like bench/forecast/run.ts; the candidate with the lowest
 * mean training ratio is written to bench/forecast/chosen.json (committed, so the report run
 * and the defaults can be checked against it). Validation is scored only by run.ts.
 */
import { writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { repoRoot } from "../../common/paths.js";
import { findCsvFiles, loadTraceCsv } from "./csv.js";
import { loadSplit, meanRatio, scoreSplit } from "./split.js";

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const root = repoRoot();
const data = resolve(opt("--data") ?? join(root, "..", "shared", "data", "traces"));
const splitFile = resolve(opt("--split") ?? join(root, "bench", "forecast", "split.json"));
const spec = loadSplit(splitFile);
const series = findCsvFiles(data).map((f) => loadTraceCsv(f, relative(data, f)));
if (series.length === 0) throw new Error(`no *.csv under ${data}`);

const scored = spec.candidates.map((c) => {
  const t0 = Date.now();
  const train = meanRatio(series.map((s) => scoreSplit(s, spec, c.model, true)), "train", "model");
  console.error(`${c.name}: train mean ratio ${train.toFixed(4)} (${Date.now() - t0} ms)`);
  return { name: c.name, model: c.model, train };
});
let best = scored[0]!;
for (const c of scored) if (c.train < best.train) best = c;
const chosen = {
  comment: "Written by bench/forecast/tune.ts: the split.json candidate with the lowest mean training ratio. Validation was not read.",
  generatedAt: new Date().toISOString(),
  split: relative(root, splitFile),
  chosen: { name: best.name, model: best.model, trainMeanRatio: best.train },
  candidates: scored.map((c) => ({ name: c.name, trainMeanRatio: Number(c.train.toFixed(4)) })),
};
writeFileSync(join(root, "bench", "forecast", "chosen.json"), JSON.stringify(chosen, null, 2) + "\n");
console.log(JSON.stringify(chosen, null, 2));
