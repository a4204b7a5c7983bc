// What an agent does once at start, before it registers: read the host, time the calibration
// kernel through the pool (when calibration is on), and start GPU support, which adds what it
// finds to the profile the scheduler places by.
import type { AgentConfig } from "../common/config.js";
import type { HardwareProfileIn } from "../common/types.js";
import { calibrate, type CalibrationResult } from "./calibrate.js";
import type { GpuSupport } from "./gpu/gpu-support.js";
import type { WorkerPool } from "./pool/worker-pool.js";
import { agentNiced } from "./load-sampler.js";
import { buildProfile, readHost } from "./profile.js";

export interface HostProfile {
  profile: HardwareProfileIn;
  calibration?: CalibrationResult;
}

export async function profileHost(config: AgentConfig, pool: WorkerPool, gpu: GpuSupport): Promise<HostProfile> {
  const raw = await readHost();
  const calibration = config.calibrate ? await calibrate(pool) : undefined;
  const profile = buildProfile(raw, pool.size, config.labels);
  // Read at start, as the workers inherit it: the scheduler then models the node as yielding
  // to its host's own load (the placement load model's niced sharing).
  profile.niced = agentNiced();
  if (calibration) profile.calibration = { kernel: calibration.kernel, opsPerSecond: calibration.opsPerSecond, wallMs: calibration.wallMs };
  await gpu.start(profile);
  return { profile, calibration };
}

/** The log line's fields once the host is profiled. */
export function describeProfile({ profile, calibration }: HostProfile, workers: number): Record<string, unknown> {
  return {
    event: "profiled",
    cpu: profile.cpu?.model,
    logicalCores: profile.cpu?.logicalCores,
    simd: profile.cpu?.simd,
    gpus: profile.gpus?.length ?? 0,
    workers,
    niced: profile.niced,
    calibrationOpsPerSecond: calibration?.opsPerSecond,
  };
}
