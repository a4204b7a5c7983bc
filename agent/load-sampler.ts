// Host load from /proc-free sources that work everywhere Node runs: CPU time deltas from
// os.cpus() and memory from os.totalmem/freemem. On Linux the CPU figures cover only the cores
// in the process's affinity mask (taskset, cgroup cpusets), re-read at every sample, so an
// agent pinned to some cores reports the load on those cores — what its kernels compete with.
// CPU time of niced processes (nice > 0, /proc/stat's "nice" column) counts as idle while the
// agent itself runs at normal priority: such work yields to its kernels (the scheduler gives a
// nice-19 thread about 1/70 of a core against one of ours), so it neither slows them nor is the
// owner's foreground work to make way for. BOINC leaves low-priority processes out of its
// "non-BOINC CPU usage" the same way. A niced agent competes with niced work, so it counts it.
import { readFileSync } from "node:fs";
import os from "node:os";

/** CPU indexes the process may run on (Linux), or undefined for "all". */
function allowedCpus(): number[] | undefined {
  try {
    const m = /Cpus_allowed_list:\s*([0-9,\-]+)/.exec(readFileSync("/proc/self/status", "utf8"));
    if (!m) return undefined;
    const out: number[] = [];
    for (const part of m[1]!.split(",")) {
      const [a, b] = part.split("-").map(Number);
      if (a === undefined || !Number.isFinite(a)) continue;
      for (let i = a; i <= (b ?? a); i++) out.push(i);
    }
    return out.length ? out : undefined;
  } catch {
    return undefined;
  }
}

/** Whether this process runs niced (its main thread's nice value; the kernel workers inherit it). */
export function agentNiced(): boolean {
  try {
    return os.getPriority() > 0;
  } catch {
    return false;
  }
}

export class CpuSampler {
  private last = this.read();

  private read(): { idle: number; total: number; own: number; at: number; cores: number } {
    const cpus = os.cpus();
    const niced = agentNiced();
    const allowed = allowedCpus()?.filter((i) => i < cpus.length) ?? cpus.map((_, i) => i);
    let idle = 0;
    let total = 0;
    for (const i of allowed) {
      const t = cpus[i]!.times;
      idle += t.idle + (niced ? 0 : t.nice);
      total += t.user + t.nice + t.sys + t.irq + t.idle;
    }
    const u = process.cpuUsage();
    return { idle, total, own: (u.user + u.system) / 1000, at: performance.now(), cores: Math.max(1, allowed.length) };
  }

  /** Utilisation 0..1 of the agent's cores since the previous call. */
  sample(): number {
    return this.sampleWithOwn().cpuUtilization;
  }

  /** Utilisation of the agent's cores, and the share of it used by this process, since the previous call. */
  sampleWithOwn(): { cpuUtilization: number; agentCpuUtilization: number } {
    const now = this.read();
    const dTotal = now.total - this.last.total;
    const dIdle = now.idle - this.last.idle;
    const dOwn = now.own - this.last.own;
    const dWall = now.at - this.last.at;
    this.last = now;
    const clamp = (x: number) => Math.min(1, Math.max(0, x));
    const cpuUtilization = dTotal <= 0 ? 0 : clamp(1 - dIdle / dTotal);
    const agentCpuUtilization = dWall <= 0 ? 0 : clamp(dOwn / (dWall * now.cores));
    return { cpuUtilization, agentCpuUtilization };
  }
}

export const memoryUsedBytes = (): number => os.totalmem() - os.freemem();
