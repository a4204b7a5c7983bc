// The host side of the kernel ABI "distx-abi-1" (kernels/README.md documents it for authors).
// Both the scheduler (at registration) and the agent (before running) check modules here,
// so a bad module is refused once, with a message that says what is wrong.
import { readAbiVersion } from "./wasm-abi-version.js";
import { withGrowTrapsSection } from "./wasm-grow-traps.js";

export const WASM_ABI = "distx-abi-1";
/**
 * The versions distx_abi_version() may answer. 2 adds the shared-input imports
 * (env.shared_input, env.shared_input_len) to 1; a version-1 kernel runs unchanged.
 */
export const ABI_VERSIONS: readonly number[] = [1, 2];
export const WASM_PAGE_BYTES = 65536;

export const ABI_EXPORTS = {
  version: "distx_abi_version",
  alloc: "distx_alloc",
  outputPtr: "distx_output_ptr",
  run: "distx_run",
} as const;

/** The only imports a kernel may ask for: everything else would widen the sandbox. */
export const ALLOWED_IMPORTS: ReadonlyMap<string, WebAssembly.ImportExportKind> = new Map([
  ["env.memory", "memory"],
  ["env.abort", "function"],
  ["env.seed", "function"],
  // ABI version 2: the job's shared inputs (read only; the agent copies one in on its first read).
  ["env.shared_input", "function"],
  ["env.shared_input_len", "function"],
  // env.log(ptr, len): one line of UTF-8 text, capped per task (common/kernel-log.ts). No ABI
  // version of its own: the import itself says the kernel needs it, so a kernel that never logs
  // has no such import and runs anywhere, and a host older than log refuses one that does by
  // name, at RegisterKernel ("kernel imports env.log …"), instead of failing its tasks later.
  ["env.log", "function"],
]);

export class KernelAbiError extends Error {
  override readonly name = "KernelAbiError";
  constructor(message: string) {
    super(message);
  }
}

const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];


/** Compiles and checks a module against the ABI. Throws KernelAbiError with the reason. */
export async function compileWasmKernel(bytes: Uint8Array, entry: string = ABI_EXPORTS.run): Promise<WebAssembly.Module> {
  if (bytes.byteLength < 8 || WASM_MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new KernelAbiError("not a WebAssembly module: the bytes do not start with the \\0asm magic number");
  }
  let module: WebAssembly.Module;
  try {
    // The grow-trap section lets a run tell a failed allocation from any other trap (common/wasm-grow-traps.ts).
    module = await WebAssembly.compile(withGrowTrapsSection(bytes) as Uint8Array<ArrayBuffer>);
  } catch (err) {
    throw new KernelAbiError(`invalid WebAssembly module: ${(err as Error).message}`);
  }
  checkWasmKernel(module, entry);
  checkAbiVersion(bytes);
  return module;
}

function checkWasmKernel(module: WebAssembly.Module, entry: string = ABI_EXPORTS.run): void {
  const imports = WebAssembly.Module.imports(module);
  for (const imp of imports) {
    const key = `${imp.module}.${imp.name}`;
    const kind = ALLOWED_IMPORTS.get(key);
    if (kind === undefined) {
      throw new KernelAbiError(
        `kernel imports ${key} (${imp.kind}); ${WASM_ABI} allows only ${[...ALLOWED_IMPORTS.keys()].join(", ")}`,
      );
    }
    if (kind !== imp.kind) throw new KernelAbiError(`kernel imports ${key} as a ${imp.kind}; it must be a ${kind}`);
  }
  if (!imports.some((i) => i.module === "env" && i.name === "memory")) {
    throw new KernelAbiError(
      "kernel must import its memory as env.memory (asc --importMemory) so the agent can cap it; it defines its own",
    );
  }
  const exports = new Map(WebAssembly.Module.exports(module).map((e) => [e.name, e.kind]));
  for (const name of [ABI_EXPORTS.version, ABI_EXPORTS.alloc, ABI_EXPORTS.outputPtr, entry]) {
    if (exports.get(name) !== "function") {
      throw new KernelAbiError(`kernel does not export the function ${name} required by ${WASM_ABI}`);
    }
  }
}

/** Refuses a kernel whose distx_abi_version() is not a constant the agents speak (read from the bytes, never run). */
function checkAbiVersion(bytes: Uint8Array): void {
  const r = readAbiVersion(bytes, ABI_EXPORTS.version);
  if ("reason" in r) {
    throw new KernelAbiError(`${ABI_EXPORTS.version}() must return a constant (i32.const N) so it can be checked without running the kernel: ${r.reason}`);
  }
  if (!ABI_VERSIONS.includes(r.version)) {
    throw new KernelAbiError(
      `kernel speaks ABI version ${r.version} (its ${ABI_EXPORTS.version}()); agents speak ${ABI_VERSIONS.join(" and ")}: build it against the distributex/kernel of this release`,
    );
  }
}

export function bytesToPages(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / WASM_PAGE_BYTES));
}
