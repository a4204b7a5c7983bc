// Host load and niced work (agent/load-sampler.ts): a niced program spinning on the agent's core
// yields to the agent's kernels, so an agent at normal priority does not count it as its host's
// own load; the same program at normal priority does count, and so does niced work for an agent
// that runs niced itself. Real processes pinned to one core with taskset; a sampler in a child
// process pinned to the same core reads the load.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { repoRoot } from "../../../common/paths.js";

const haveTaskset = spawnSync("taskset", ["-c", "0", "true"]).status === 0;
const sampler = path.join(repoRoot(), "dist", "agent", "load-sampler.js");
let burner: ChildProcess | undefined;

afterEach(() => {
  burner?.kill("SIGKILL");
  burner = undefined;
});

/** Starts a CPU spinner on core 0 at the given nice value; resolves once it spins. */
async function burn(nice: number): Promise<void> {
  burner = spawn("nice", ["-n", String(nice), "taskset", "-c", "0", process.execPath, "-e", "console.log('go'); for (;;) {}"], { stdio: ["ignore", "pipe", "ignore"] });
  await new Promise<void>((res) => burner!.stdout!.once("data", () => res()));
}

/** The sampler's CPU utilisation of core 0 over 1.5 s, read by a child pinned there at `nice`. */
function sampleCore0(nice: number): number {
  const code = `import(${JSON.stringify(sampler)}).then(({ CpuSampler }) => { const s = new CpuSampler(); setTimeout(() => console.log(s.sampleWithOwn().cpuUtilization), 1500); })`;
  const r = spawnSync("nice", ["-n", String(nice), "taskset", "-c", "0", process.execPath, "-e", code], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`sampler failed: ${r.stderr}`);
  return Number(r.stdout.trim());
}

// Skips only without taskset (util-linux): the spinner and the sampler must share one pinned core.
describe.skipIf(!haveTaskset)("host load and niced work", () => {
  it("niced work on the core is idle to an agent at normal priority, busy to a niced one; normal-priority work is busy to both", async () => {
    // Differences, not levels: other normal-priority work on core 0 reads as busy to every
    // sampler alike (this file runs in the solo pass, where there should be little of it).
    await burn(19);
    const normalAgent = sampleCore0(0);
    const nicedAgent = sampleCore0(19);
    expect(nicedAgent).toBeGreaterThan(0.7);
    expect(nicedAgent - normalAgent, `niced spinner read ${normalAgent} by a normal agent, ${nicedAgent} by a niced one`).toBeGreaterThan(0.3);
    burner!.kill("SIGKILL");
    await burn(0);
    const busy = sampleCore0(0);
    expect(busy).toBeGreaterThan(0.7);
    expect(busy - normalAgent).toBeGreaterThan(0.3);
  }, 30_000);
});
