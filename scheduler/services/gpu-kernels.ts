// RegisterKernel for gpu.js modules: the module is validated in full (schema, layout, and the
// kernel source against the safe subset) before it is stored under the sha256 of its bytes.
import { invalidArgument } from "../../common/errors.js";
import { sha256Hex } from "../../common/hash.js";
import type { RegisterKernelRequest__Output } from "../../generated/proto/distributex/v1/RegisterKernelRequest.js";
import { GPU_ABI, GpuModuleError, parseGpuModule } from "../../kernels/gpu/module.js";
import type { StateStore } from "../backends/types.js";

const MAX_GPU_MODULE_BYTES = 1024 * 1024;

export async function registerGpuKernel(core: { store: Pick<StateStore, "putKernel"> }, req: RegisterKernelRequest__Output): Promise<{ kernelId: string; alreadyRegistered: boolean }> {
  if (req.module.byteLength === 0) throw invalidArgument("module is empty: send the kernel's .gpu.json bytes (distx kernel build x.gpu.js)");
  if (req.module.byteLength > MAX_GPU_MODULE_BYTES) throw invalidArgument(`gpu module is ${req.module.byteLength} bytes; the limit is ${MAX_GPU_MODULE_BYTES}`);
  if (req.abi && req.abi !== GPU_ABI) throw invalidArgument(`abi ${JSON.stringify(req.abi)} is not supported for gpu kernels; use ${GPU_ABI}`);
  if (req.name.length > 200) throw invalidArgument("name must be at most 200 characters");
  let name: string;
  try {
    name = parseGpuModule(req.module).name;
  } catch (err) {
    if (err instanceof GpuModuleError) throw invalidArgument(err.message);
    throw err;
  }
  const kernelId = sha256Hex(req.module);
  const { created } = await core.store.putKernel({
    kernelId,
    name: req.name || name,
    kind: "KERNEL_KIND_GPU",
    entry: req.entry || "kernel",
    abi: GPU_ABI,
    sizeBytes: req.module.byteLength,
    registeredAtMs: Date.now(),
    module: Buffer.from(req.module),
  });
  return { kernelId, alreadyRegistered: !created };
}
