// Re-checks a saved chaos history (e.g. after changing the checker):
//   node dist/test/chaos/recheck.js test-output/chaos/<run>/history.jsonl
import path from "node:path";
import { check } from "./checker.js";
import { readHistory } from "./history.js";
import { renderSummary } from "./summary.js";

const file = process.argv[2];
if (!file) {
  console.error("usage: node dist/test/chaos/recheck.js <history.jsonl>");
  process.exit(2);
}
const history = readHistory(file);
const meta = history.find((e) => e.type === "meta");
const report = check(history);
const last = history[history.length - 1]?.t ?? 0;
console.log(
  renderSummary(
    {
      run: path.basename(path.dirname(path.resolve(file))),
      seed: meta?.type === "meta" ? meta.seed : 0,
      minutes: meta?.type === "meta" ? meta.minutes : 0,
      startedAt: "(re-checked)",
      machine: "(re-checked)",
      agents: meta?.type === "meta" ? meta.agents.length : 0,
      clients: new Set(history.flatMap((e) => (e.type === "invoke" ? [e.client] : []))).size,
      heartbeatIntervalMs: meta?.type === "meta" ? meta.heartbeatIntervalMs : 0,
      agentTimeoutMs: meta?.type === "meta" ? meta.agentTimeoutMs : 0,
      leaseTtlMs: meta?.type === "meta" ? meta.leaseTtlMs : 0,
      eventsMaxMessageBytes: 0,
      wallMs: last,
    },
    report,
  ),
);
process.exit(report.violations.length ? 1 : 0);
