// Host load from /proc-free sources that work everywhere Node runs: CPU time deltas from
// os.cpus() and memory from os.totalmem/freemem.
import os from "node:os";

export class CpuSampler {
  private last = this.read();

  private read(): { idle: number; total: number } {
    let idle = 0;
    let total = 0;
    for (const cpu of os.cpus()) {
      const t = cpu.times;
      idle += t.idle;
      total += t.user + t.nice + t.sys + t.irq + t.idle;
    }
    return { idle, total };
  }

  /** Utilisation 0..1 of the whole host since the previous call. */
  sample(): number {
    const now = this.read();
    const dTotal = now.total - this.last.total;
    const dIdle = now.idle - this.last.idle;
    this.last = now;
    if (dTotal <= 0) return 0;
    return Math.min(1, Math.max(0, 1 - dIdle / dTotal));
  }
}

export const memoryUsedBytes = (): number => os.totalmem() - os.freemem();
