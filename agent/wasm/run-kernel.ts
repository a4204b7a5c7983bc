// Runs one task of a WebAssembly kernel in a fresh instance with a capped memory.
// A fresh instance per task means no state leaks between tasks or tenants; instantiating a
// compiled module costs tens of microseconds, far less than any real task. The linear memory
// may come from a MemoryPool (memory-pool.ts): memories are kept by size class, grown ones too,
// and zeroed whole before a later task gets them, which saves the page faults of a fresh memory
// (they dominate the whole task: bench/results/kernels.md). A zeroed memory with the same cap
// holds nothing of the last task, and instantiation re-initialises globals and data segments.
// The copies are the two the ABI needs: the input once into linear memory, straight from the
// bytes the caller holds, and the output once into an ArrayBuffer of its own the caller can
// transfer: a fresh one, or one the caller gave back to an OutputPool (output-pool.ts), which
// saves the fresh buffer's page faults.
import { ABI_EXPORTS, ABI_VERSIONS, WASM_PAGE_BYTES, bytesToPages } from "../../common/kernel-abi.js";
import { growTraps, trapOffset } from "../../common/wasm-grow-traps.js";
import { formatLocation, trapLocation } from "../../common/kernel-srcmap.js";
import type { KernelLog } from "../../common/kernel-log.js";
import type { MemoryPool } from "./memory-pool.js";

export { MemoryPool, type MemoryPoolOptions } from "./memory-pool.js";
export { OutputPool, type OutputPoolOptions } from "./output-pool.js";

/** Where an output's ArrayBuffer comes from: an OutputPool, or the buffer a worker was handed with its task. */
export interface OutputBuffers {
  /** An ArrayBuffer of exactly `length` bytes, every one of which the caller overwrites. */
  take(length: number): ArrayBuffer;
}

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
  /** Where to take the task's linear memory from and give it back to; without one, each task gets a new Memory. */
  memoryPool?: MemoryPool;
  /** Where to take the output's ArrayBuffer from (the caller gives it back when done with it); without one, a new one. */
  outputPool?: OutputBuffers;
  /** The job's shared inputs, in order: what env.shared_input(i) / env.shared_input_len(i) read (ABI version 2). */
  sharedInputs?: Uint8Array[];
  /** Where env.log(ptr, len) writes (capped and sanitised there); read it after the run, trap or not. Without one, lines are checked and dropped. */
  log?: KernelLog;
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

/** Whether each module imports env.memory (asked once per module: Module.imports builds a fresh list each call). */
const importsMemory = new WeakMap<WebAssembly.Module, boolean>();

/**
 * Runs the kernel over `input` and returns an ArrayBuffer of its own with the output (its own so
 * it can be transferred to another thread without copying): fresh, or from options.outputPool.
 */
export function runWasmKernel(module: WebAssembly.Module, input: Uint8Array, options: RunKernelOptions): ArrayBuffer {
  const entry = options.entry ?? ABI_EXPORTS.run;
  let declared = importsMemory.get(module);
  if (declared === undefined) {
    declared = WebAssembly.Module.imports(module).some((i) => i.name === "memory");
    importsMemory.set(module, declared);
  }
  if (!declared) throw new KernelRunError("INVALID_KERNEL", "kernel does not import env.memory");
  const maximumPages = bytesToPages(options.memoryLimitBytes);
  // Start with room for the input plus a little; the kernel grows memory up to the cap.
  const initialPages = Math.min(maximumPages, bytesToPages(input.byteLength + 2 * WASM_PAGE_BYTES));
  const pool = options.memoryPool;
  const memory = pool ? pool.acquire(initialPages, maximumPages) : new WebAssembly.Memory({ initial: initialPages, maximum: maximumPages });
  try {
    return runIn(module, memory, maximumPages, input, entry, options);
  } finally {
    // Given back whatever happened, traps and failed instantiations included: release() zeroes
    // every byte of a memory it keeps, so nothing of this task can reach the next one.
    pool?.release(memory, maximumPages);
  }
}

function runIn(
  module: WebAssembly.Module,
  memory: WebAssembly.Memory,
  maximumPages: number,
  input: Uint8Array,
  entry: string,
  options: RunKernelOptions,
): ArrayBuffer {
  let abortMessage: string | undefined;
  let seed = options.seed ?? Date.now();
  const shared = options.sharedInputs ?? [];
  // Where each shared input was copied into the instance's memory: copied on its first read only,
  // so a kernel that never reads one pays nothing for it.
  const sharedAt: number[] = [];
  let kernel: KernelExports | undefined;
  const sharedInput = (index: number): Uint8Array => {
    const bytes = shared[index];
    if (!bytes) {
      abortMessage = `shared_input(${index}): the job has ${shared.length} shared input(s)`;
      throw new WebAssembly.RuntimeError(abortMessage);
    }
    return bytes;
  };
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
      /** Bytes of shared input `index`, or -1 when the job has no such input. */
      shared_input_len(index: number): number {
        return shared[index]?.byteLength ?? -1;
      },
      /** Where shared input `index` starts in the kernel's memory (copied there on the first call); traps when there is none. */
      shared_input(index: number): number {
        const bytes = sharedInput(index);
        let at = sharedAt[index];
        if (at === undefined) {
          at = kernel!.distx_alloc(bytes.byteLength);
          new Uint8Array(memory.buffer, at, bytes.byteLength).set(bytes);
          sharedAt[index] = at;
        }
        return at;
      },
      /** One log line: `len` bytes of UTF-8 at `ptr`. Bytes outside the memory trap (never read past it). */
      log(ptr: number, len: number): void {
        // i32 arguments: wasm32 addresses are unsigned, and a negative length is a huge one.
        const at = ptr >>> 0;
        const n = len >>> 0;
        const size = memory.buffer.byteLength;
        if (at + n > size) {
          abortMessage = `log(ptr=${at}, len=${n}): the bytes are outside the kernel's ${size}-byte memory`;
          throw new WebAssembly.RuntimeError(abortMessage);
        }
        options.log?.write(new Uint8Array(memory.buffer, at, n));
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
  kernel = exports;
  const run = exports[entry];
  if (typeof run !== "function") throw new KernelRunError("INVALID_KERNEL", `kernel does not export ${entry}`);
  try {
    const version = exports.distx_abi_version();
    if (!ABI_VERSIONS.includes(version)) throw new KernelRunError("INVALID_KERNEL", `kernel speaks ABI version ${version}; this agent speaks ${ABI_VERSIONS.join(" and ")}`);
    const inPtr = exports.distx_alloc(input.byteLength);
    new Uint8Array(memory.buffer, inPtr, input.byteLength).set(input);
    const outLen = run(inPtr, input.byteLength);
    const outPtr = exports.distx_output_ptr();
    if (outLen < 0 || outPtr + outLen > memory.buffer.byteLength) {
      throw new KernelRunError("TRAP", `kernel returned an output of ${outLen} bytes at ${outPtr}, outside its memory`);
    }
    if (!options.outputPool) return memory.buffer.slice(outPtr, outPtr + outLen);
    // Exactly outLen bytes, every one overwritten here: nothing of an earlier output stays in it.
    const out = options.outputPool.take(outLen);
    new Uint8Array(out).set(new Uint8Array(memory.buffer, outPtr, outLen));
    return out;
  } catch (err) {
    if (err instanceof KernelRunError) throw err;
    const message = abortMessage ?? (err as Error).message;
    // An allocator executes `unreachable` when memory.grow fails at the cap; the host cannot see
    // the failed grow, but it knows where those traps are in the module (common/wasm-grow-traps.ts).
    const capBytes = maximumPages * WASM_PAGE_BYTES;
    const grownBytes = memory.buffer.byteLength;
    const at = trapOffset(err);
    if (!abortMessage && at !== undefined && growTraps(module).has(at)) {
      throw new KernelRunError(
        "MEMORY_LIMIT",
        `kernel exceeded its memory cap of ${capBytes} bytes (it had grown to ${grownBytes} bytes when it trapped: ${message})`,
      );
    }
    // The author's file, line and function, when the build left a source map in the module
    // (common/kernel-srcmap.ts); an abort() already names its own place.
    const loc = abortMessage ? undefined : trapLocation(module, err);
    throw new KernelRunError("TRAP", `kernel trapped: ${message}${loc ? ` ${formatLocation(loc)}` : ""}`);
  }
}
