// Where in the author's source a kernel trapped. `distx kernel build` appends a compact source
// map to the module as the custom section "distx.srcmap" (so it travels with the bytes: no proto
// change, and the sha256 covers it). The agent maps a trap's wasm frames through it. The section
// comes from the client, so it is size-bounded before it is parsed and checked field by field;
// a bad or missing map only means a trap without a location, never an error.
//
// Payload: UTF-8 JSON {"v":1,"files":[path...],"rows":[offset,file,line,col, ...]} with rows
// sorted by module byte offset (the offsets V8 prints as wasm-function[N]:0xOFFSET), line and
// col 1-based.

export const SRCMAP_SECTION = "distx.srcmap";
/** Largest section the agent parses (an example kernel's map is a few KiB). */
export const MAX_SRCMAP_BYTES = 1 << 20;

export interface KernelSrcmap {
  files: string[];
  /** Flat [offset, file, line, col] quadruples, sorted by offset. */
  rows: number[];
}

export interface SourceLocation {
  /** Absent when no frame maps to a source line (e.g. a trap the compiler merged from several sites). */
  file?: string;
  line?: number;
  col?: number;
  /** The wasm function's name (name section), else wasm-function[N]. */
  fn?: string;
}

/** The section's payload for a map (the build calls this). */
export function encodeSrcmap(map: KernelSrcmap): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ v: 1, files: map.files, rows: map.rows }));
}


const isUint = (n: unknown): n is number => typeof n === "number" && Number.isInteger(n) && n >= 0 && n <= 0xffffffff;

/** Parses and checks a section's payload; undefined for anything malformed or too big. */
export function decodeSrcmap(payload: ArrayBuffer | Uint8Array): KernelSrcmap | undefined {
  if (payload.byteLength === 0 || payload.byteLength > MAX_SRCMAP_BYTES) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const { v, files, rows } = value as Record<string, unknown>;
  if (v !== 1 || !Array.isArray(files) || !Array.isArray(rows) || rows.length % 4 !== 0) return undefined;
  if (!files.every((f) => typeof f === "string" && f.length <= 1024)) return undefined;
  let last = -1;
  for (let i = 0; i < rows.length; i += 4) {
    const [off, file, line, col] = [rows[i], rows[i + 1], rows[i + 2], rows[i + 3]];
    if (!isUint(off) || !isUint(file) || !isUint(line) || !isUint(col) || file >= files.length || off < last) return undefined;
    last = off;
  }
  return { files: files as string[], rows: rows as number[] };
}

const cache = new WeakMap<WebAssembly.Module, KernelSrcmap | null>();

/** The module's map (the last "distx.srcmap" section), or undefined when it has none or a bad one. */
export function moduleSrcmap(module: WebAssembly.Module): KernelSrcmap | undefined {
  let map = cache.get(module);
  if (map === undefined) {
    let found: KernelSrcmap | undefined;
    try {
      const sections = WebAssembly.Module.customSections(module, SRCMAP_SECTION);
      const last = sections[sections.length - 1];
      found = last ? decodeSrcmap(last) : undefined;
    } catch {
      found = undefined;
    }
    map = found ?? null;
    cache.set(module, map);
  }
  return map ?? undefined;
}

/** The source position of a module byte offset: the last row at or before it. */
export function lookup(map: KernelSrcmap, offset: number): { file: string; line: number; col: number } | undefined {
  const n = map.rows.length / 4;
  let lo = 0;
  let hi = n - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (map.rows[mid * 4]! <= offset) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  if (found < 0) return undefined;
  const r = found * 4;
  // Line 0: code the compiler could not attribute to a line (DWARF's convention).
  if (map.rows[r + 2] === 0) return undefined;
  return { file: map.files[map.rows[r + 1]!]!, line: map.rows[r + 2]!, col: map.rows[r + 3]! };
}

interface WasmFrame {
  fn?: string;
  offset: number;
}

// V8: "    at distx_run (wasm://wasm/1a2b3c4d:wasm-function[3]:0x1f0)" or, without a name
// section, "    at wasm://wasm/1a2b3c4d:wasm-function[3]:0x1f0".
const FRAME = /at (?:(\S+) \()?wasm:\/\/wasm\/[0-9a-f]+:wasm-function\[(\d+)\]:0x([0-9a-f]+)\)?/g;

function wasmFrames(err: unknown): WasmFrame[] {
  const stack = String((err as Error | undefined)?.stack ?? "");
  const frames: WasmFrame[] = [];
  for (const m of stack.matchAll(FRAME)) {
    const fn = m[1] && !m[1].startsWith("$") ? m[1] : undefined;
    frames.push({ fn: fn ?? `wasm-function[${m[2]}]`, offset: parseInt(m[3]!, 16) });
    if (frames.length >= 16) break;
  }
  return frames;
}

/**
 * Where the trap happened in the author's source: the innermost wasm frame that maps to a file
 * outside the compiler's own library (AssemblyScript's "~lib/", a C or Rust toolchain's
 * system paths), else the innermost frame that maps at all, else just the innermost function.
 */
export function trapLocation(module: WebAssembly.Module, err: unknown): SourceLocation | undefined {
  const map = moduleSrcmap(module);
  if (!map) return undefined;
  const frames = wasmFrames(err);
  let first: SourceLocation | undefined;
  for (const frame of frames) {
    const at = lookup(map, frame.offset);
    if (!at) continue;
    const loc: SourceLocation = { ...at, ...(frame.fn ? { fn: frame.fn } : {}) };
    if (!isLibraryPath(at.file)) return loc;
    first ??= loc;
  }
  return first ?? (frames[0]?.fn ? { fn: frames[0].fn } : undefined);
}

function isLibraryPath(file: string): boolean {
  return file.startsWith("~lib/") || file.startsWith("/usr/") || file.includes("/rustc/") || file.includes("/library/core/");
}

/** "at saxpy.c:12:5 in distx_run", or "in distx_run" without a line. */
export function formatLocation(loc: SourceLocation): string {
  const at = loc.file !== undefined ? `at ${loc.file}:${loc.line}:${loc.col}` : "";
  return [at, loc.fn ? `in ${loc.fn}` : ""].filter(Boolean).join(" ");
}
