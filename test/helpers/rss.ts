// The resident memory of a process this test started (Linux /proc), for asserting memory bounds.
import { readFileSync } from "node:fs";
import type { LocalCluster } from "../../cli/local-cluster.js";

const MiB = 1024 * 1024;

/** A /proc/<pid>/status field in bytes: VmRSS (now) or VmHWM (the peak since the process began). */
export function procMemory(pid: number, field: "VmRSS" | "VmHWM"): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

export function schedulerPid(cluster: LocalCluster): number {
  const pid = cluster.processes.find((p) => p.name === "scheduler")?.child.pid;
  if (!pid) throw new Error("the cluster has no scheduler process");
  return pid;
}

export const mib = (bytes: number): string => `${(bytes / MiB).toFixed(0)} MiB`;
export { MiB };
