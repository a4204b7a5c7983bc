// node bench/ab/table.mjs DIR: the paired table of an interleave.sh run (per-round after ÷ before, medians).
import { readFileSync, readdirSync } from "node:fs";
const D = process.argv[2];
const rounds = readdirSync(D).filter((f) => /^queue-before-\d+\.txt$/.test(f)).map((f) => Number(f.match(/(\d+)/)[1])).sort((a, b) => a - b);
const pool = (side, r, name) => { const l = readFileSync(`${D}/pool-${side}-${r}.txt`, "utf8").split("\n").find((x) => x.includes(name)); return Number(l.split("|")[2].trim()); };
const queue = (side, r) => JSON.parse(readFileSync(`${D}/queue-${side}-${r}.txt`, "utf8").split("\n").filter((l) => l.includes('"system":"distributex memory"'))[0]);
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); const n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const metrics = {
  "pool, depth 1, tasks/s": (s, r) => pool(s, r, "depth 1"),
  "pool, pipelined, tasks/s": (s, r) => pool(s, r, "pipelined (default"),
  "queue, memory no-op, tasks/s": (s, r) => queue(s, r).tasksPerSecond,
  "queue, CPU ms per 1k tasks (machine)": (s, r) => queue(s, r).cpuMsPer1k,
  "queue, scheduler CPU ms per 1k": (s, r) => queue(s, r).cpuByProcess.scheduler,
  "queue, agent CPU ms per 1k": (s, r) => queue(s, r).cpuByProcess["agent-0"],
  "queue, client CPU ms per 1k": (s, r) => queue(s, r).cpuByProcess.client,
};
console.log("| bench | before (median) | after (median) | after ÷ before, per round | median ratio | rounds after > before |\n| --- | ---: | ---: | --- | ---: | ---: |");
for (const [name, f] of Object.entries(metrics)) {
  const b = rounds.map((r) => f("before", r)), a = rounds.map((r) => f("after", r));
  const ratios = rounds.map((_, i) => a[i] / b[i]);
  console.log(`| ${name} | ${Math.round(med(b))} | ${Math.round(med(a))} | ${ratios.map((x) => x.toFixed(2)).join(", ")} | ${med(ratios).toFixed(2)} | ${ratios.filter((x) => x > 1).length}/${rounds.length} |`);
}
const loads = readFileSync(`${D}/log`, "utf8").match(/load [\d.]+/g).map((x) => Number(x.slice(5)));
console.log(`\nload average (1 min) at the start of each side: ${Math.min(...loads)}–${Math.max(...loads)}`);
