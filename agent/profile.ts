// Host profiling with systeminformation. `buildProfile` is pure so it can be tested on
// recorded outputs (with and without GPUs); `profileHost` gathers the live readings.
import os from "node:os";
import si from "systeminformation";
import type { HardwareProfileIn } from "../common/types.js";

export interface RawHostReadings {
  hostname: string;
  platform: string;
  arch: string;
  cpu: { manufacturer: string; brand: string; physicalCores: number; cores: number; speed: number };
  /** The space-separated CPU flags string systeminformation reports. */
  cpuFlags: string;
  memTotal: number;
  graphics: { vendor?: string; model?: string; vram?: number | null; memoryTotal?: number | null }[];
}

const SIMD_FLAG = /^(mmx|sse\d?(_\d)?|ssse3|sse4a|avx\d*.*|fma\d?|f16c|amx.*|neon|asimd.*|sve\d?|vsx|altivec|simd128)$/;

/** Display-only adapters (server BMCs, hypervisor framebuffers) are not compute GPUs. */
const DISPLAY_ONLY_VENDOR = /aspeed|matrox|cirrus|vmware|virtio|bochs|red hat|qxl|hyper-v|microsoft basic/i;

export function simdFeatures(flags: string): string[] {
  return [...new Set(flags.toLowerCase().split(/[\s,]+/).filter((f) => SIMD_FLAG.test(f)))].sort();
}

export function buildProfile(raw: RawHostReadings, workers: number, labels: Record<string, string>): HardwareProfileIn {
  const gpus = raw.graphics
    .filter((g) => !DISPLAY_ONLY_VENDOR.test(`${g.vendor ?? ""} ${g.model ?? ""}`))
    .map((g) => {
      // systeminformation reports vram in MiB (0/null when unknown); nvidia-smi-backed memoryTotal likewise.
      const mib = g.memoryTotal ?? g.vram ?? 0;
      return {
        vendor: g.vendor ?? "unknown",
        model: g.model ?? "unknown",
        memoryBytes: String(Math.max(0, Math.round(mib)) * 1024 * 1024),
      };
    });
  return {
    hostname: raw.hostname,
    platform: raw.platform,
    arch: raw.arch,
    cpu: {
      vendor: raw.cpu.manufacturer,
      model: raw.cpu.brand,
      physicalCores: raw.cpu.physicalCores || raw.cpu.cores,
      logicalCores: raw.cpu.cores,
      baseGhz: raw.cpu.speed,
      simd: simdFeatures(raw.cpuFlags),
    },
    memoryBytes: String(raw.memTotal),
    gpus,
    workers,
    labels,
    kernelKinds: ["KERNEL_KIND_WASM"],
  };
}

export async function readHost(): Promise<RawHostReadings> {
  const [cpu, cpuFlags, mem, graphics] = await Promise.all([
    si.cpu(),
    si.cpuFlags(),
    si.mem(),
    // A host with no GPU, or no way to list them, is a normal host.
    si.graphics().catch(() => ({ controllers: [] as si.Systeminformation.GraphicsControllerData[] })),
  ]);
  return {
    hostname: os.hostname(),
    platform: process.platform,
    arch: process.arch,
    cpu: {
      manufacturer: cpu.manufacturer,
      brand: cpu.brand,
      physicalCores: cpu.physicalCores,
      cores: cpu.cores || os.availableParallelism(),
      speed: cpu.speed,
    },
    cpuFlags,
    memTotal: mem.total,
    graphics: graphics.controllers.map((c) => ({ vendor: c.vendor, model: c.model, vram: c.vram, memoryTotal: c.memoryTotal ?? null })),
  };
}
