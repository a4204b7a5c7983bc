// Records every heartbeat load sample the scheduler receives, one JSON line each, so that the
// live forecaster's settings can be chosen and checked on real heartbeat series offline
// (bench/forecast/live.ts). Off unless DISTX_LOAD_RECORD_FILE names a file: a diagnostic.
import { createWriteStream } from "node:fs";
import type { NodeRegistry } from "../registry.js";

/** One recorded heartbeat: the scheduler's clock (ms), the node, and the sample's fields. */
export interface RecordedLoad {
  t: number;
  node: string;
  cpu: number;
  agentCpu: number;
  running: number;
  queued: number;
}

/** Appends each `load` event of the registry to `file`; the stream closes with the registry's last listener. */
export function recordLoad(registry: NodeRegistry, file: string, now: () => number = Date.now): void {
  const out = createWriteStream(file, { flags: "a" });
  // A full disk must not stop the scheduler: the recording is lost, nothing else.
  out.on("error", () => undefined);
  registry.on("load", (node, load) => {
    const rec: RecordedLoad = {
      t: now(),
      node: node.id,
      cpu: load.cpuUtilization,
      agentCpu: load.agentCpuUtilization ?? -1,
      running: load.runningTasks,
      queued: load.queuedTasks,
    };
    out.write(JSON.stringify(rec) + "\n");
  });
}
