// Where a kernel's out-of-memory traps are. AssemblyScript's allocators (and most others) compile
// `if (memory.grow(n) < 0) unreachable();`: the trap that follows a failed grow is an
// `unreachable` right after a short comparison of memory.grow's result. The host cannot see the
// failed grow itself, so the code offsets of those `unreachable`s are found once, when the module
// is compiled, and travel inside the compiled module as a custom section (a compiled module is
// what workers receive, never the bytes). A trap is MEMORY_LIMIT only if it happened at one of
// them: a trap after a large allocation that succeeded is a TRAP.

import { appendCustomSection } from "./wasm-custom-section.js";

export const GROW_TRAPS_SECTION = "distx.grow_traps";
/** Bound on the offsets kept per module (an allocator has a handful). */
const MAX_OFFSETS = 4096;
/** How far before the `if` the memory.grow may be (its result compared with 0, maybe via a local). */
const WINDOW = 12;

/** Byte offsets (in the module) of `unreachable`s guarded by `if` right after a memory.grow. */
function findGrowTraps(bytes: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 3; i < bytes.length && out.length < MAX_OFFSETS; i++) {
    // unreachable (0x00) as the first instruction of a void `if` (0x04 0x40)
    if (bytes[i] !== 0x00 || bytes[i - 1] !== 0x40 || bytes[i - 2] !== 0x04) continue;
    for (let j = i - 4; j >= Math.max(0, i - 2 - WINDOW); j--) {
      // memory.grow on memory 0 (0x40 0x00)
      if (bytes[j] === 0x40 && bytes[j + 1] === 0x00) {
        out.push(i);
        break;
      }
    }
  }
  return out;
}

/** The module's bytes with a custom section listing its grow traps appended (offsets before it do not move). */
export function withGrowTrapsSection(bytes: Uint8Array): Uint8Array {
  const offsets = findGrowTraps(bytes);
  const payload = Buffer.alloc(offsets.length * 4);
  offsets.forEach((o, k) => payload.writeUInt32LE(o, k * 4));
  return appendCustomSection(bytes, GROW_TRAPS_SECTION, payload);
}

const cache = new WeakMap<WebAssembly.Module, Set<number>>();

/** The grow-trap offsets a module carries (empty for one compiled without withGrowTrapsSection). */
export function growTraps(module: WebAssembly.Module): Set<number> {
  let set = cache.get(module);
  if (!set) {
    const sections = WebAssembly.Module.customSections(module, GROW_TRAPS_SECTION);
    // The last one is the host's (appended last); a kernel's own section of that name is ignored.
    const last = sections[sections.length - 1];
    const view = last ? new DataView(last) : undefined;
    set = new Set(view ? Array.from({ length: Math.floor(view.byteLength / 4) }, (_, k) => view.getUint32(k * 4, true)) : []);
    cache.set(module, set);
  }
  return set;
}

/** The module byte offset where a WebAssembly RuntimeError happened, from its stack. */
export function trapOffset(err: unknown): number | undefined {
  const m = /wasm-function\[\d+\]:0x([0-9a-f]+)/.exec(String((err as Error)?.stack ?? ""));
  return m ? parseInt(m[1]!, 16) : undefined;
}
