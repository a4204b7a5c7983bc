// Builds a gpu.js kernel source (*.gpu.js / *.gpu.mjs, an ES module whose default export
// holds the kernel function and its layout) into canonical module bytes (<name>.gpu.json)
// plus a manifest (<name>.manifest.json, kind "gpu"). Importing the source runs the author's
// own file on the author's machine; what is registered is only the JSON, which the
// scheduler and the executor re-validate.
import { createHash } from "node:crypto";
import { mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Parser } from "acorn";
import { z } from "zod";
import { encodeGpuModule, GPU_ABI, GpuModuleError, parseGpuModule, type GpuKernelModule } from "./module.js";

export const GPU_SOURCE_PATTERN = /\.gpu\.m?js$/;
export const isGpuKernelSource = (file: string): boolean => GPU_SOURCE_PATTERN.test(file);

export const GpuKernelManifestSchema = z.object({
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/),
  kind: z.literal("gpu"),
  abi: z.literal(GPU_ABI),
  /** Lower-case hex SHA-256 of the .gpu.json bytes: the kernel id. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  sizeBytes: z.number().int().positive(),
  source: z.string().min(1),
  output: z.array(z.union([z.string(), z.number()])),
  result: z.enum(["f32", "u32", "i32"]),
  builtAt: z.iso.datetime({ offset: true }),
});
export type GpuKernelManifest = z.infer<typeof GpuKernelManifestSchema>;

export interface BuildGpuKernelResult {
  modulePath: string;
  manifestPath: string;
  manifest: GpuKernelManifest;
  module: GpuKernelModule;
  bytes: Uint8Array;
}

export async function buildGpuKernel(sourceFile: string, opts: { outDir: string }): Promise<BuildGpuKernelResult> {
  const source = path.resolve(sourceFile);
  if (!isGpuKernelSource(source)) throw new GpuModuleError(`gpu kernel source must end in .gpu.js or .gpu.mjs: ${sourceFile}`);
  const name = path.basename(source).replace(GPU_SOURCE_PATTERN, "");
  let spec: Record<string, unknown>;
  try {
    const mod = (await import(pathToFileURL(source).href)) as { default?: unknown };
    if (!mod.default || typeof mod.default !== "object") throw new Error("it must `export default { kernel, header, args, output, result, ... }`");
    spec = mod.default as Record<string, unknown>;
  } catch (err) {
    throw new GpuModuleError(`cannot load ${sourceFile}: ${(err as Error).message}`);
  }
  const { kernel, ...layout } = spec;
  if (typeof kernel !== "function") throw new GpuModuleError(`${sourceFile}: default export needs kernel: function (...) { ... }`);
  const text = kernel.toString();
  // Methods (`kernel(a) {}`) stringify without the `function` keyword.
  const fnSource = stripComments(/^function[\s(]/.test(text) ? text : `function ${text.replace(/^kernel\s*/, "")}`);
  const candidate = { abi: GPU_ABI, name, source: fnSource, constants: {}, settings: {}, ...layout };
  let bytes = encodeGpuModule(candidate as GpuKernelModule);
  let module: GpuKernelModule;
  try {
    module = parseGpuModule(bytes);
  } catch (err) {
    throw new GpuModuleError(`${sourceFile}: ${(err as Error).message}`);
  }
  bytes = encodeGpuModule(module); // canonical field order and defaults
  const outDir = path.resolve(opts.outDir);
  const manifest: GpuKernelManifest = GpuKernelManifestSchema.parse({
    name,
    kind: "gpu",
    abi: GPU_ABI,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    sizeBytes: bytes.byteLength,
    source: path.relative(outDir, source).split(path.sep).join("/"),
    output: module.output,
    result: module.result,
    builtAt: new Date().toISOString(),
  });
  await mkdir(outDir, { recursive: true });
  const modulePath = path.join(outDir, `${name}.gpu.json`);
  const manifestPath = path.join(outDir, `${name}.manifest.json`);
  const suffix = `.tmp-${process.pid}-${Date.now()}`;
  await writeFile(modulePath + suffix, bytes);
  await writeFile(manifestPath + suffix, JSON.stringify(manifest, null, 2) + "\n");
  await rename(modulePath + suffix, modulePath);
  await rename(manifestPath + suffix, manifestPath);
  return { modulePath, manifestPath, manifest, module, bytes };
}

/**
 * Registered kernel sources may not contain comments (the checker refuses them: a comment is text
 * that one JS reader skips and another may not). The author's comments are removed here, on the
 * author's machine; newlines inside them are kept so that error offsets stay on the same line.
 */
export function stripComments(fnSource: string): string {
  const ranges: [number, number][] = [];
  try {
    Parser.parse(`(${fnSource}\n)`, { ecmaVersion: 2020, sourceType: "script", onComment: (_b: boolean, _t: string, start: number, end: number) => void ranges.push([start - 1, end - 1]) });
  } catch {
    return fnSource; // the checker reports what does not parse
  }
  let out = "";
  let at = 0;
  for (const [start, end] of ranges) {
    out += fnSource.slice(at, start) + fnSource.slice(start, end).replace(/[^\n]/g, " ");
    at = end;
  }
  return out + fnSource.slice(at);
}
