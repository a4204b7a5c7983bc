// Builds an AssemblyScript kernel into a .wasm plus its manifest, checked against the
// kernel ABI ("distx-abi-1") before anything is written. Used by `distx kernel build`
// and by the tests and benchmarks.
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import asc from "assemblyscript/asc";
import { sdkSearchPath } from "./sdk-path.js";
import { compileWasmKernel, KernelAbiError, WASM_ABI, ABI_EXPORTS } from "../../common/kernel-abi.js";
import { parseManifest, type KernelManifest } from "./manifest.js";

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
    "--noColors",
  ];
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
  if (!source.endsWith(".ts")) throw new KernelBuildError(`kernel source must be a .ts file: ${sourceFile}`);
  const name = path.basename(source, ".ts");
  const baseDir = path.dirname(source);
  const outDir = path.resolve(opts.outDir);
  const flags = kernelCompilerFlags(opts.optimize ?? true);

  const diagnostics: string[] = [];
  const sourceTexts = new Map<string, string>();
  let binary: Uint8Array | undefined;
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
    compiler: { name: "assemblyscript", version: ASSEMBLYSCRIPT_VERSION, flags: flags.filter((f) => f !== "--noColors") },
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
