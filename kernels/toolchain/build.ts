// Builds a kernel into a .wasm plus its manifest, checked against the kernel ABI
// ("distx-abi-1") before anything is written: AssemblyScript (.ts), C (.c) or a Cargo project
// (a folder with Cargo.toml; kernels/toolchain/native.ts). Every build carries a compact source
// map in the module's "distx.srcmap" section so a trap names the author's file and line
// (common/kernel-srcmap.ts). Used by `distx kernel build` and by the tests and benchmarks.
import { createHash } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import asc from "assemblyscript/asc";
import { decode } from "@jridgewell/sourcemap-codec";
import { sdkSearchPath } from "./sdk-path.js";
import { compileWasmKernel, KernelAbiError, WASM_ABI, ABI_EXPORTS } from "../../common/kernel-abi.js";
import { encodeSrcmap, MAX_SRCMAP_BYTES, SRCMAP_SECTION, type KernelSrcmap } from "../../common/kernel-srcmap.js";
import { appendCustomSection } from "../../common/wasm-custom-section.js";
import { parseManifest, type KernelManifest } from "./manifest.js";
import { buildC, buildRust, NativeBuildError, type NativeBuild } from "./native.js";

export interface BuildKernelOptions {
  outDir: string;
  /** -O3 (default true); false builds with -O0 for quicker, debuggable builds. */
  optimize?: boolean;
}

export interface BuildKernelResult {
  wasmPath: string;
  manifestPath: string;
  manifest: KernelManifest;
}

export class KernelBuildError extends Error {
  override readonly name = "KernelBuildError";
  constructor(
    message: string,
    /** Compiler diagnostics as "file:line:col: ERROR TSxxxx: message" lines. */
    readonly diagnostics: string[] = [],
  ) {
    super(message);
  }
}

/**
 * Flags every kernel is built with. --importMemory is what lets the agent cap a kernel's
 * memory; --runtime stub is a bump allocator with no GC (a fresh instance per task makes
 * freeing pointless); SIMD is part of the baseline every agent's V8 supports.
 */
function kernelCompilerFlags(optimize = true): string[] {
  return [
    optimize ? "-O3" : "-O0",
    "--runtime",
    "stub",
    "--importMemory",
    "--noExportMemory",
    "--enable",
    "simd",
    // A source map (turned into the distx.srcmap section) and a name section for trap
    // locations; with -O3 the code they describe is byte-for-byte the same as without them.
    "--sourceMap",
    "--debug",
    "--noColors",
  ];
}

/** An AssemblyScript source map (binaryen's: generated column = module byte offset) as srcmap rows. */
export function sourceMapToSrcmap(mapJson: string): KernelSrcmap | undefined {
  try {
    const map = JSON.parse(mapJson) as { sources?: unknown; mappings?: unknown };
    if (!Array.isArray(map.sources) || typeof map.mappings !== "string") return undefined;
    const rows: Array<[number, number, number, number]> = [];
    for (const line of decode(map.mappings)) {
      for (const seg of line) {
        if (seg.length >= 4) rows.push([seg[0], seg[1]!, seg[2]! + 1, seg[3]! + 1]);
      }
    }
    rows.sort((a, b) => a[0] - b[0]);
    return { files: map.sources.map(String), rows: rows.flat() };
  } catch {
    return undefined;
  }
}

/** Appends the srcmap section when there is one and it fits the agent's bound (else the kernel just has no trap locations). */
function withSrcmap(binary: Uint8Array, srcmap: KernelSrcmap | undefined): Uint8Array {
  if (!srcmap) return binary;
  const payload = encodeSrcmap(srcmap);
  return payload.byteLength <= MAX_SRCMAP_BYTES ? appendCustomSection(binary, SRCMAP_SECTION, payload) : binary;
}

export const ASSEMBLYSCRIPT_VERSION: string = asc.version;

// asc keeps some module-level state; builds are quick, so run them one at a time.
let queue: Promise<unknown> = Promise.resolve();

export function buildKernel(sourceFile: string, opts: BuildKernelOptions): Promise<BuildKernelResult> {
  const run = queue.then(() => buildKernelNow(sourceFile, opts));
  queue = run.catch(() => undefined);
  return run;
}

function lineCol(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, col: offset - lineStart + 1 };
}

// assemblyscript DiagnosticCategory: Pedantic, Info, Warning, Error.
const CATEGORY = ["PEDANTIC", "INFO", "WARNING", "ERROR"];

async function buildKernelNow(sourceFile: string, opts: BuildKernelOptions): Promise<BuildKernelResult> {
  const source = path.resolve(sourceFile);
  const cargo = path.basename(source) === "Cargo.toml" ? path.dirname(source) : isDir(source) && existsSync(path.join(source, "Cargo.toml")) ? source : undefined;
  if (cargo !== undefined || source.endsWith(".c")) {
    let built: NativeBuild;
    try {
      built = cargo !== undefined ? await buildRust(cargo, opts.optimize ?? true) : await buildC(source, opts.optimize ?? true);
    } catch (err) {
      if (err instanceof NativeBuildError) throw new KernelBuildError(`failed to compile ${sourceFile}: ${err.message}`);
      throw err;
    }
    return writeKernel(sourceFile, cargo ?? source, built.name, withSrcmap(built.binary, built.srcmap), built.compiler, [], opts);
  }
  if (!source.endsWith(".ts")) {
    throw new KernelBuildError(`kernel source must be an AssemblyScript .ts file, a C .c file or a Cargo project folder: ${sourceFile}`);
  }
  const name = path.basename(source, ".ts");
  const baseDir = path.dirname(source);
  const flags = kernelCompilerFlags(opts.optimize ?? true);

  const diagnostics: string[] = [];
  const sourceTexts = new Map<string, string>();
  let binary: Uint8Array | undefined;
  let sourceMap: string | undefined;
  const stdout = asc.createMemoryStream();
  const stderr = asc.createMemoryStream();
  let result: Awaited<ReturnType<typeof asc.main>>;
  try {
    result = await asc.main([path.basename(source), "--outFile", `${name}.wasm`, "--baseDir", baseDir, ...flags, "--path", sdkSearchPath()], {
      stdout,
      stderr,
      readFile: async (filename, dir) => {
        try {
          const text = await readFile(path.resolve(dir, filename), "utf8");
          sourceTexts.set(path.resolve(dir, filename), text);
          return text;
        } catch {
          return null;
        }
      },
      writeFile: (filename, contents) => {
        if (filename === `${name}.wasm` && typeof contents !== "string") binary = contents;
        if (filename === `${name}.wasm.map` && typeof contents === "string") sourceMap = contents;
      },
      reportDiagnostic: (d) => {
        const category = CATEGORY[d.category] ?? "ERROR";
        let where = "";
        if (d.range) {
          const file = d.range.source.normalizedPath;
          const abs = path.resolve(baseDir, file);
          const text = sourceTexts.get(abs);
          const rel = path.relative(process.cwd(), abs) || file;
          if (text !== undefined && !file.startsWith("~lib/")) {
            const { line, col } = lineCol(text, d.range.start);
            where = `${rel}:${line}:${col}: `;
          } else {
            where = `${file}: `;
          }
        }
        diagnostics.push(`${where}${category} TS${d.code}: ${d.message}`);
      },
    });
  } catch (err) {
    throw new KernelBuildError(`assemblyscript crashed compiling ${sourceFile}: ${(err as Error).message}`);
  }
  if (result.error) {
    const errors = diagnostics.filter((l) => /\bERROR TS/.test(l));
    // Our "file:line:col: ERROR ..." lines first, then asc's own code frames.
    const frames = stderr.toString().replace(/^FAILURE .*$/m, "").trim();
    const detail = [errors.join("\n"), frames].filter(Boolean).join("\n\n");
    throw new KernelBuildError(`failed to compile ${sourceFile} (${result.error.message}):\n${detail}`, diagnostics);
  }
  if (!binary) throw new KernelBuildError(`assemblyscript produced no binary for ${sourceFile}`, diagnostics);
  const compiler = { name: "assemblyscript" as const, version: ASSEMBLYSCRIPT_VERSION, flags: flags.filter((f) => f !== "--noColors") };
  return writeKernel(sourceFile, source, name, withSrcmap(binary, sourceMap ? sourceMapToSrcmap(sourceMap) : undefined), compiler, diagnostics, opts);
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

async function writeKernel(
  sourceFile: string,
  source: string,
  name: string,
  binary: Uint8Array,
  compiler: KernelManifest["compiler"],
  diagnostics: string[],
  opts: BuildKernelOptions,
): Promise<BuildKernelResult> {
  const outDir = path.resolve(opts.outDir);
  try {
    await compileWasmKernel(binary, ABI_EXPORTS.run);
  } catch (err) {
    if (err instanceof KernelAbiError) {
      throw new KernelBuildError(`${sourceFile} compiled, but the module breaks ${WASM_ABI}: ${err.message}`, diagnostics);
    }
    throw err;
  }

  const manifest = parseManifest({
    name,
    kind: "wasm",
    entry: ABI_EXPORTS.run,
    abi: WASM_ABI,
    sha256: createHash("sha256").update(binary).digest("hex"),
    sizeBytes: binary.byteLength,
    source: path.relative(outDir, source).split(path.sep).join("/"),
    compiler,
    builtAt: new Date().toISOString(),
  } satisfies KernelManifest);

  await mkdir(outDir, { recursive: true });
  const wasmPath = path.join(outDir, `${name}.wasm`);
  const manifestPath = path.join(outDir, `${name}.manifest.json`);
  // Write-then-rename so a reader never sees a half-written kernel or a manifest for other bytes.
  const suffix = `.tmp-${process.pid}-${Date.now()}`;
  await writeFile(wasmPath + suffix, binary);
  await writeFile(manifestPath + suffix, JSON.stringify(manifest, null, 2) + "\n");
  await rename(wasmPath + suffix, wasmPath);
  await rename(manifestPath + suffix, manifestPath);
  return { wasmPath, manifestPath, manifest };
}
