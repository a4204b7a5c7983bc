// GPU discovery beyond systeminformation: nvidia-smi, when installed, gives exact memory and
// live utilisation. parseNvidiaSmi is pure so it is tested on recorded output.
import { execFile } from "node:child_process";

export interface NvidiaGpu {
  index: number;
  name: string;
  memoryTotalBytes: number;
  memoryUsedBytes: number;
  /** 0..1, or -1 when the driver does not say ("[N/A]"). */
  utilization: number;
}

export const NVIDIA_SMI_QUERY = ["--query-gpu=index,name,memory.total,memory.used,utilization.gpu", "--format=csv,noheader,nounits"];

export function parseNvidiaSmi(text: string): NvidiaGpu[] {
  const out: NvidiaGpu[] = [];
  for (const line of text.split("\n")) {
    const cols = line.split(",").map((c) => c.trim());
    if (cols.length < 5 || !/^\d+$/.test(cols[0]!)) continue;
    const num = (s: string) => (/^\d+(\.\d+)?$/.test(s) ? Number(s) : NaN);
    const mib = (s: string) => (Number.isFinite(num(s)) ? Math.round(num(s) * 1024 * 1024) : 0);
    const util = num(cols[4]!);
    out.push({
      index: Number(cols[0]),
      name: cols[1]!,
      memoryTotalBytes: mib(cols[2]!),
      memoryUsedBytes: mib(cols[3]!),
      utilization: Number.isFinite(util) ? util / 100 : -1,
    });
  }
  return out;
}

/** nvidia-smi's view of the GPUs, or undefined when it is not installed or fails. */
export function readNvidiaSmi(timeoutMs = 5000): Promise<NvidiaGpu[] | undefined> {
  return new Promise((resolve) => {
    execFile("nvidia-smi", NVIDIA_SMI_QUERY, { timeout: timeoutMs }, (err, stdout) => resolve(err ? undefined : parseNvidiaSmi(stdout)));
  });
}

/** Samples utilisation in the background so heartbeats never wait on nvidia-smi. */
export class GpuUtilizationSampler {
  private last = -1;
  private timer?: NodeJS.Timeout;

  start(everyMs = 5000): void {
    const tick = () =>
      void readNvidiaSmi().then((gpus) => {
        this.last = gpus && gpus.length ? gpus.reduce((s, g) => s + Math.max(0, g.utilization), 0) / gpus.length : -1;
      });
    tick();
    this.timer = setInterval(tick, everyMs);
    this.timer.unref();
  }

  /** Mean utilisation 0..1 over the GPUs, -1 when unknown. */
  get value(): number {
    return this.last;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
