// Compiled kernels by content hash. Each kernel is fetched from the scheduler once,
// its bytes checked against the hash it is addressed by, checked against the ABI and
// compiled once; workers then receive the compiled module, never the bytes.
import { compileWasmKernel } from "../../common/kernel-abi.js";
import { sha256Hex } from "../../common/hash.js";
import { TaskFailure } from "../pool/types.js";

export type KernelFetcher = (kernelId: string) => Promise<Uint8Array>;

export class ModuleCache {
  private readonly modules = new Map<string, Promise<WebAssembly.Module>>();

  constructor(
    private readonly fetchKernel: KernelFetcher,
    private readonly maxEntries = 256,
  ) {}

  get size(): number {
    return this.modules.size;
  }

  has(kernelId: string): boolean {
    return this.modules.has(kernelId);
  }

  get(kernelId: string): Promise<WebAssembly.Module> {
    const hit = this.modules.get(kernelId);
    if (hit) {
      // Refresh recency: Map iteration order is insertion order.
      this.modules.delete(kernelId);
      this.modules.set(kernelId, hit);
      return hit;
    }
    const loading = this.load(kernelId);
    this.modules.set(kernelId, loading);
    loading.catch(() => this.modules.delete(kernelId));
    while (this.modules.size > this.maxEntries) {
      const oldest = this.modules.keys().next().value as string;
      this.modules.delete(oldest);
    }
    return loading;
  }

  private async load(kernelId: string): Promise<WebAssembly.Module> {
    // Fetch errors arrive classified (transient or not) by the fetcher; what fails below is the kernel's own fault.
    const bytes = await this.fetchKernel(kernelId);
    const actual = sha256Hex(bytes);
    if (actual !== kernelId) throw new TaskFailure("INVALID_KERNEL", `kernel ${kernelId} arrived with sha256 ${actual}; refusing to run it`);
    try {
      return await compileWasmKernel(bytes);
    } catch (err) {
      throw new TaskFailure("INVALID_KERNEL", (err as Error).message);
    }
  }
}
