// Runs one task of a WebAssembly kernel in a fresh instance with a capped memory.
// A fresh instance per task means no state leaks between tasks or tenants; instantiating a
// compiled module costs tens of microseconds, far less than any real task.
import { ABI_EXPORTS, WASM_PAGE_BYTES, bytesToPages } from "../../common/kernel-abi.js";

export type KernelFailureCode = "TRAP" | "MEMORY_LIMIT" | "INVALID_KERNEL";

export class KernelRunError extends Error {
  override readonly name = "KernelRunError";
  constructor(
    readonly code: KernelFailureCode,
    message: string,
  ) {
    super(message);
  }
}

export interface RunKernelOptions {
  /** Hard cap on the instance's linear memory (the Memory's maximum). */
  memoryLimitBytes: number;
  /** Seed for kernels that use Math.random (AssemblyScript imports env.seed). */
  seed?: number;
  entry?: string;
}

interface KernelExports {
  distx_abi_version(): number;
  distx_alloc(len: number): number;
  distx_output_ptr(): number;
  [entry: string]: (...args: number[]) => number;
}

function readString(memory: WebAssembly.Memory, ptr: number): string {
  // AssemblyScript strings: UTF-16, byte length stored at ptr-4.
  if (!ptr || ptr < 4 || ptr > memory.buffer.byteLength) return "";
  const len = new Uint32Array(memory.buffer.slice(ptr - 4, ptr))[0] ?? 0;
  const end = Math.min(ptr + len, memory.buffer.byteLength);
  return Buffer.from(memory.buffer.slice(ptr, end)).toString("utf16le");
}

/**
 * Runs the kernel over `input` and returns a fresh ArrayBuffer with its output
 * (fresh so it can be transferred to another thread without copying).
 */
export function runWasmKernel(module: WebAssembly.Module, input: Uint8Array, options: RunKernelOptions): ArrayBuffer {
  const entry = options.entry ?? ABI_EXPORTS.run;
  const declared = WebAssembly.Module.imports(module).find((i) => i.name === "memory");
  if (!declared) throw new KernelRunError("INVALID_KERNEL", "kernel does not import env.memory");
  const maximumPages = bytesToPages(options.memoryLimitBytes);
  // Start with room for the input plus a little; the kernel grows memory up to the cap.
  const initialPages = Math.min(maximumPages, bytesToPages(input.byteLength + 2 * WASM_PAGE_BYTES));
  const memory = new WebAssembly.Memory({ initial: initialPages, maximum: maximumPages });
  let abortMessage: string | undefined;
  let seed = options.seed ?? Date.now();
  const imports = {
    env: {
      memory,
      abort(msg: number, file: number, line: number, col: number) {
        const where = readString(memory, file);
        abortMessage = `${readString(memory, msg) || "abort"}${where ? ` at ${where}:${line}:${col}` : ""}`;
        throw new WebAssembly.RuntimeError(abortMessage);
      },
      seed() {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return seed;
      },
    },
  };
  let instance: WebAssembly.Instance;
  try {
    instance = new WebAssembly.Instance(module, imports);
  } catch (err) {
    const message = (err as Error).message;
    if (/memory/i.test(message)) {
      throw new KernelRunError(
        "MEMORY_LIMIT",
        `kernel needs more memory than its cap of ${options.memoryLimitBytes} bytes: ${message}`,
      );
    }
    throw new KernelRunError("INVALID_KERNEL", `kernel could not be instantiated: ${message}`);
  }
  const exports = instance.exports as unknown as KernelExports;
  const run = exports[entry];
  if (typeof run !== "function") throw new KernelRunError("INVALID_KERNEL", `kernel does not export ${entry}`);
  try {
    const version = exports.distx_abi_version();
    if (version !== 1) throw new KernelRunError("INVALID_KERNEL", `kernel speaks ABI version ${version}; this agent speaks 1`);
    const inPtr = exports.distx_alloc(input.byteLength);
    new Uint8Array(memory.buffer, inPtr, input.byteLength).set(input);
    const outLen = run(inPtr, input.byteLength);
    const outPtr = exports.distx_output_ptr();
    if (outLen < 0 || outPtr + outLen > memory.buffer.byteLength) {
      throw new KernelRunError("TRAP", `kernel returned an output of ${outLen} bytes at ${outPtr}, outside its memory`);
    }
    return memory.buffer.slice(outPtr, outPtr + outLen);
  } catch (err) {
    if (err instanceof KernelRunError) throw err;
    const message = abortMessage ?? (err as Error).message;
    // AssemblyScript's allocator executes `unreachable` when memory.grow fails at the cap, and the
    // host cannot observe the failed grow itself: a bare `unreachable` trap with memory grown past
    // half its cap is reported as what it almost surely is.
    const capBytes = maximumPages * WASM_PAGE_BYTES;
    const grownBytes = memory.buffer.byteLength;
    if (!abortMessage && /unreachable/i.test(message) && grownBytes * 2 > capBytes) {
      throw new KernelRunError(
        "MEMORY_LIMIT",
        `kernel exceeded its memory cap of ${capBytes} bytes (it had grown to ${grownBytes} bytes when it trapped: ${message})`,
      );
    }
    throw new KernelRunError("TRAP", `kernel trapped: ${message}`);
  }
}
