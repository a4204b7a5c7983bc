// False alerts per node-day on noisy plateaus, through the real controller (replay.ts), with
// enough simulated time to count them: held-out seeds (101, ...), each plateau level 60/70/80 %,
// for the scheduler's default settings and for the previous defaults (bound upper) on the same
// samples. The replay runs far faster than real time (a few ms per 1 s heartbeat).
//   DISTX_BENCH_PLATEAU_STEPS=86400 DISTX_BENCH_SEEDS=2 node dist/bench/alerts/plateau.js
// DISTX_BENCH_BASELINE_STEPS: steps per plateau for the baseline (default the same); the old bound
// alarms so often that a few hours give its rate.
import os from "node:os";
import { schedulerConfigSchema } from "../../common/config.js";
import { PLATEAU_STEPS, replay, shape, type Settings } from "./replay.js";

const SEEDS = Array.from({ length: Number(process.env.DISTX_BENCH_SEEDS ?? 2) }, (_, i) => 101 + i);
const BASELINE_STEPS = Number(process.env.DISTX_BENCH_BASELINE_STEPS ?? PLATEAU_STEPS);
const d = schedulerConfigSchema.parse({});
const runs: [string, Settings, number][] = [
  [`defaults (bound ${d.saturationBound}, horizon ${d.saturationHorizonMs / 1000} s)`, { bound: d.saturationBound, horizonMs: d.saturationHorizonMs }, PLATEAU_STEPS],
  ["previous defaults (bound upper, horizon 15 s)", { bound: "upper", horizonMs: 15_000 }, BASELINE_STEPS],
];
console.log(`${os.cpus().length}× ${os.cpus()[0]?.model}, load average ${os.loadavg().map((x) => x.toFixed(1)).join(" ")} at start; held-out seeds ${SEEDS.join(",")}`);
console.log("| settings | plateau | node-days | alerts | false alerts | per node-day | crossings (predicted) | s to replay |");
console.log("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const [name, s, steps] of runs) {
  for (const level of [60, 70, 80]) {
    let fa = 0, alerts = 0, n = 0, cross = 0, pred = 0;
    const t0 = performance.now();
    for (const seed of SEEDS) {
      // The shape's warm-up, then `steps` of plateau (the jump onto it included).
      const series = shape(`plateau${level}`, seed).slice(0, 180 + steps);
      const o = replay(series, s);
      fa += o.falseAlerts; alerts += o.alerts; n += o.steps; cross += o.crossings; pred += o.leads.length;
    }
    const days = n / 86_400;
    console.log(`| ${name} | ${level} % | ${days.toFixed(2)} | ${alerts} | ${fa} | ${(fa / days).toFixed(2)} | ${cross} (${pred}) | ${((performance.now() - t0) / 1000).toFixed(0)} |`);
  }
}
console.log(`load average at the end ${os.loadavg().map((x) => x.toFixed(1)).join(" ")}`);
