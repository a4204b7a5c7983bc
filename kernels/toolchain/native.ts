// C and Rust kernels for `distx kernel build`: Debian's clang + lld (--target=wasm32, memory
// imported so the agent can cap it, no libc) and Debian's rustc/cargo with the wasm32 standard
// library (scripts/setup/50-kernel-langs.sh). Both are built with DWARF line tables, which are
// turned into the module's "distx.srcmap" section (common/kernel-srcmap.ts) and then stripped,
// so a trap names the author's file and line and the shipped module stays small.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type { KernelSrcmap } from "../../common/kernel-srcmap.js";

const run = promisify(execFile);

export class NativeBuildError extends Error {
  override readonly name = "NativeBuildError";
}

export interface NativeBuild {
  name: string;
  binary: Uint8Array;
  srcmap: KernelSrcmap | undefined;
  compiler: { name: "clang" | "rustc"; version: string; flags: string[] };
}

/**
 * Debian's tools by absolute path: a rustup toolchain first on PATH (/root/.cargo/bin) has no
 * wasm32 target and cannot fetch one offline. DISTX_CLANG / DISTX_RUSTC / DISTX_CARGO override.
 */
export const TOOLS = {
  clang: process.env.DISTX_CLANG ?? "/usr/bin/clang",
  rustc: process.env.DISTX_RUSTC ?? "/usr/bin/rustc",
  cargo: process.env.DISTX_CARGO ?? "/usr/bin/cargo",
  dwarfdump: process.env.DISTX_LLVM_DWARFDUMP ?? "/usr/bin/llvm-dwarfdump",
  symbolizer: process.env.DISTX_LLVM_SYMBOLIZER ?? "/usr/bin/llvm-symbolizer",
};

const SYSTEM_PATH = "/usr/bin:/bin";

/** Whether the tools for `lang` are installed (tests skip without them outside CI). */
export function haveToolchain(lang: "c" | "rust"): boolean {
  const need = lang === "c" ? [TOOLS.clang, "/usr/bin/wasm-ld"] : [TOOLS.rustc, TOOLS.cargo];
  return [...need, TOOLS.dwarfdump, TOOLS.symbolizer].every((p) => existsSync(p));
}

/** -O3 and SIMD like the AssemblyScript kernels; no FMA contraction so floats round like the JS references. */
export function clangFlags(optimize = true): string[] {
  return [
    "--target=wasm32",
    optimize ? "-O3" : "-O0",
    "-g",
    "-msimd128",
    "-mbulk-memory",
    "-ffp-contract=off",
    "-ffreestanding",
    "-nostdlib",
    "-Wall",
    "-Wl,--no-entry",
    "-Wl,--import-memory",
    // Stack below the data: an overflow traps instead of overwriting statics.
    "-Wl,--stack-first",
    "-Wl,-z,stack-size=65536",
  ];
}

async function tool(file: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  try {
    const { stdout } = await run(file, args, { ...opts, maxBuffer: 64 << 20 });
    return stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === "ENOENT") throw new NativeBuildError(`${file} is not installed (scripts/setup/50-kernel-langs.sh installs it)`);
    throw new NativeBuildError(`${path.basename(file)} failed:\n${(e.stderr ?? e.message).trim()}`);
  }
}

export async function buildC(source: string, optimize = true): Promise<NativeBuild> {
  const name = path.basename(source, ".c");
  const tmp = await mkdtemp(path.join(os.tmpdir(), "distx-c-"));
  try {
    const out = path.join(tmp, `${name}.wasm`);
    const flags = clangFlags(optimize);
    // Run in the source's folder so DWARF paths come out relative to it ("saxpy.c"). Only the
    // system PATH: clang runs any wasm-opt it finds there after linking (node_modules/.bin has
    // binaryen's), which would drop the name section and move code away from its DWARF.
    await tool(TOOLS.clang, [...flags, "-o", out, path.basename(source)], { cwd: path.dirname(source), env: { ...process.env, PATH: SYSTEM_PATH } });
    const version = (await tool(TOOLS.clang, ["--version"])).split("\n")[0]!.trim();
    return await finish(name, out, path.dirname(source), { name: "clang", version, flags });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Builds a Cargo project (a cdylib for wasm32-unknown-unknown) with Debian's cargo and rustc. */
export async function buildRust(projectDir: string, optimize = true): Promise<NativeBuild> {
  const manifest = await readFile(path.join(projectDir, "Cargo.toml"), "utf8").catch(() => {
    throw new NativeBuildError(`${projectDir} has no Cargo.toml`);
  });
  const pkg = /^\s*name\s*=\s*"([A-Za-z0-9_-]+)"/m.exec(manifest)?.[1];
  if (!pkg) throw new NativeBuildError(`${projectDir}/Cargo.toml has no package name`);
  const target = await mkdtemp(path.join(os.tmpdir(), "distx-rust-"));
  try {
    const rustflags = ["-C", "target-feature=+simd128,+bulk-memory", "-C", "link-arg=--import-memory", "-C", "link-arg=-zstack-size=65536", "-C", "debuginfo=1"];
    const args = ["build", "--offline", "--target", "wasm32-unknown-unknown", "--target-dir", target, ...(optimize ? ["--release"] : [])];
    await tool(TOOLS.cargo, args, {
      cwd: projectDir,
      env: { ...process.env, PATH: `${SYSTEM_PATH}:${process.env.PATH ?? ""}`, RUSTC: TOOLS.rustc, RUSTFLAGS: rustflags.join(" "), CARGO_TERM_COLOR: "never" },
    });
    const file = pkg.replace(/-/g, "_");
    const out = path.join(target, "wasm32-unknown-unknown", optimize ? "release" : "debug", `${file}.wasm`);
    const version = (await tool(TOOLS.rustc, ["--version"])).trim();
    return await finish(file, out, projectDir, { name: "rustc", version, flags: ["--target", "wasm32-unknown-unknown", ...(optimize ? ["--release"] : []), ...rustflags] });
  } finally {
    await rm(target, { recursive: true, force: true });
  }
}

async function finish(name: string, wasm: string, sourceDir: string, compiler: NativeBuild["compiler"]): Promise<NativeBuild> {
  const withDebug = new Uint8Array(await readFile(wasm));
  const lines = await tool(TOOLS.dwarfdump, ["--debug-line", wasm]);
  const codeStart = codePayloadOffset(withDebug);
  const srcmap = codeStart === undefined ? undefined : dwarfLinesToSrcmap(lines, codeStart, sourceDir);
  if (srcmap && codeStart !== undefined) await attributeInlinedLibraryRows(srcmap, wasm, codeStart, sourceDir);
  return { name, binary: stripDebugSections(withDebug), srcmap, compiler };
}

/** A toolchain's own source (Rust's core, clang's headers): a trap there is reported at the author's call. */
export const isToolchainPath = (file: string): boolean => file.startsWith("/usr/") || file.includes("/rustc/") || file.includes("/library/core/");

/**
 * A row in the toolchain's code inlined into the author's (Rust's `unreachable()`, a slice
 * index check) is moved to the author's line that the inlining chain leads to, which
 * llvm-symbolizer reads from DWARF's inlined-subroutine records.
 */
async function attributeInlinedLibraryRows(map: KernelSrcmap, wasm: string, codeStart: number, sourceDir: string): Promise<void> {
  const todo: number[] = [];
  for (let r = 0; r < map.rows.length; r += 4) {
    if (map.rows[r + 2] !== 0 && isToolchainPath(map.files[map.rows[r + 1]!]!)) todo.push(r);
  }
  if (todo.length === 0) return;
  const input = todo.map((r) => `0x${(map.rows[r]! - codeStart).toString(16)}`).join("\n") + "\n";
  const out = await new Promise<string>((resolve, reject) => {
    const child = execFile(TOOLS.symbolizer, [`--obj=${wasm}`, "--inlining", "--functions=none"], { maxBuffer: 64 << 20 }, (err, stdout) =>
      err ? reject(new NativeBuildError(`llvm-symbolizer failed: ${err.message}`)) : resolve(stdout),
    );
    child.stdin?.end(input);
  });
  const blocks = out.split(/\n\s*\n/);
  todo.forEach((r, k) => {
    const frames = (blocks[k] ?? "").split("\n").map((l) => /^(.*):(\d+):(\d+)$/.exec(l.trim())).filter((m) => m !== null);
    const own = frames.find((m) => !isToolchainPath(path.normalize(m[1]!)) && Number(m[2]) > 0);
    if (!own) return;
    const file = displayPath(own[1]!, sourceDir);
    let idx = map.files.indexOf(file);
    if (idx < 0) idx = map.files.push(file) - 1;
    map.rows[r + 1] = idx;
    map.rows[r + 2] = Number(own[2]);
    map.rows[r + 3] = Number(own[3]);
  });
}

function displayPath(file: string, sourceDir: string): string {
  const abs = path.normalize(file);
  return path.isAbsolute(abs) && !isToolchainPath(abs) ? path.relative(sourceDir, abs) || abs : abs;
}

interface Section {
  id: number;
  start: number;
  payloadStart: number;
  end: number;
  name?: string;
}

function sections(bytes: Uint8Array): Section[] {
  const out: Section[] = [];
  let i = 8;
  const leb = (): number => {
    let n = 0;
    let shift = 0;
    let b: number;
    do {
      b = bytes[i++]!;
      n += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return n;
  };
  while (i < bytes.length) {
    const start = i;
    const id = bytes[i++]!;
    const size = leb();
    const payloadStart = i;
    const s: Section = { id, start, payloadStart, end: payloadStart + size };
    if (id === 0) {
      const len = leb();
      s.name = Buffer.from(bytes.subarray(i, i + len)).toString("utf8");
    }
    out.push(s);
    i = s.end;
  }
  return out;
}

/** Where the code section's payload starts: DWARF addresses in wasm are relative to it. */
function codePayloadOffset(bytes: Uint8Array): number | undefined {
  return sections(bytes).find((s) => s.id === 10)?.payloadStart;
}

/** Drops the DWARF and producers sections (all after the code, so no code offset moves); keeps the name section. */
function stripDebugSections(bytes: Uint8Array): Uint8Array {
  const keep = sections(bytes).filter((s) => !(s.id === 0 && (s.name?.startsWith(".debug_") || s.name === "producers" || s.name === "external_debug_info")));
  return Buffer.concat([Buffer.from(bytes.subarray(0, 8)), ...keep.map((s) => Buffer.from(bytes.subarray(s.start, s.end)))]);
}

/**
 * `llvm-dwarfdump --debug-line` text to a srcmap: each line-table row becomes
 * [module offset, file, line, col]; file paths are shown relative to the source directory.
 */
export function dwarfLinesToSrcmap(text: string, codeStart: number, sourceDir: string): KernelSrcmap | undefined {
  const files: string[] = [];
  const fileIndex = new Map<string, number>();
  const rows: Array<[number, number, number, number]> = [];
  for (const unit of text.split(/^debug_line\[/m).slice(1)) {
    const dirs = new Map<number, string>();
    const compDir = "";
    for (const m of unit.matchAll(/^include_directories\[\s*(\d+)\] = "(.*)"$/gm)) dirs.set(Number(m[1]), m[2]!);
    const unitFiles = new Map<number, string>();
    for (const m of unit.matchAll(/^file_names\[\s*(\d+)\]:\s*\n\s*name: "(.*)"\s*\n\s*dir_index: (\d+)/gm)) {
      const dir = dirs.get(Number(m[3])) ?? compDir;
      unitFiles.set(Number(m[1]), displayPath(path.isAbsolute(m[2]!) ? m[2]! : path.join(dir, m[2]!), sourceDir));
    }
    for (const m of unit.matchAll(/^0x([0-9a-f]+)\s+(\d+)\s+(\d+)\s+(\d+)\s.*$/gm)) {
      const [addr, line, col, file] = [parseInt(m[1]!, 16), Number(m[2]), Number(m[3]), Number(m[4])];
      const end = m[0].includes("end_sequence");
      const name = unitFiles.get(file);
      let idx = 0;
      if (name !== undefined) {
        idx = fileIndex.get(name) ?? files.push(name) - 1;
        fileIndex.set(name, idx);
      }
      // A row with line 0 (or a sequence end) covers code with no source line: no location.
      rows.push([codeStart + addr, idx, end || name === undefined ? 0 : line, col]);
    }
  }
  if (rows.length === 0 || files.length === 0) return undefined;
  rows.sort((a, b) => a[0] - b[0]);
  return { files, rows: rows.flat() };
}

