// A kernel's reference: a JS or TS module the author writes beside the kernel, which says what
// the kernel should output, how to build inputs for it and how to compare outputs
// (kernels/README.md, "Testing a kernel"). A .ts reference is transpiled with the `typescript`
// package (found from the reference's own folder first, then from distributex's): Node 20 cannot
// strip types itself, and a loader such as tsx would be a dependency of every install.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, unlink, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { Draw } from "./kernel-test.js";

export type ElementType = "bytes" | "u8" | "i32" | "u32" | "f32" | "f64";
const ELEMENT_TYPES: readonly ElementType[] = ["bytes", "u8", "i32", "u32", "f32", "f64"];

export interface CompareSpec {
  /** How the output bytes are read: element by element, little-endian. Default "bytes" (exact). */
  type: ElementType;
  /** |expected - got| <= absTol + relTol * |expected| passes (floats). Default 0 and 0: exact. */
  absTol: number;
  relTol: number;
}

export interface KernelReference {
  reference(input: Uint8Array, seed: number): Uint8Array;
  /** Builds an input of `size` (elements, in the author's unit) from the draws; without it, `size` random bytes. */
  makeInput(size: number, draw: Draw): Uint8Array;
  compare: CompareSpec;
  sizes?: number[];
}

export class ReferenceLoadError extends Error {
  override readonly name = "ReferenceLoadError";
}

/** Loads and checks a reference module. Throws ReferenceLoadError with what is wrong. */
export async function loadReference(file: string): Promise<KernelReference> {
  const abs = path.resolve(file);
  if (!existsSync(abs)) throw new ReferenceLoadError(`no such reference: ${file}`);
  let mod: Record<string, unknown>;
  if (/\.(c|m)?ts$/.test(abs)) {
    const ts = loadTypeScript(abs);
    const source = await readFile(abs, "utf8");
    const out = ts.transpileModule(source, { fileName: abs, compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
    // Beside the source, so its relative and package imports resolve as the author wrote them.
    const tmp = path.join(path.dirname(abs), `.${path.basename(abs)}.${randomBytes(4).toString("hex")}.mjs`);
    await writeFile(tmp, out.outputText);
    try {
      mod = (await import(pathToFileURL(tmp).href)) as Record<string, unknown>;
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
  } else {
    mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
  }
  const reference = (mod.reference ?? mod.default) as KernelReference["reference"] | undefined;
  if (typeof reference !== "function") throw new ReferenceLoadError(`${file} must export a function \`reference(input: Uint8Array, seed: number): Uint8Array\` (named or default)`);
  const makeInput = mod.makeInput as KernelReference["makeInput"] | undefined;
  if (makeInput !== undefined && typeof makeInput !== "function") throw new ReferenceLoadError(`${file}: makeInput must be a function (size, draw) => Uint8Array`);
  const c = (mod.compare ?? {}) as Partial<CompareSpec>;
  const compare: CompareSpec = { type: c.type ?? "bytes", absTol: c.absTol ?? 0, relTol: c.relTol ?? 0 };
  if (!ELEMENT_TYPES.includes(compare.type)) throw new ReferenceLoadError(`${file}: compare.type must be one of ${ELEMENT_TYPES.join(", ")}, got ${JSON.stringify(compare.type)}`);
  if (!(compare.absTol >= 0 && compare.relTol >= 0)) throw new ReferenceLoadError(`${file}: compare.absTol and compare.relTol must be ≥ 0`);
  const sizes = mod.sizes as number[] | undefined;
  if (sizes !== undefined && !(Array.isArray(sizes) && sizes.every((s) => Number.isInteger(s) && s >= 0))) throw new ReferenceLoadError(`${file}: sizes must be an array of whole numbers ≥ 0`);
  return {
    reference,
    makeInput: makeInput ?? ((size, draw) => Uint8Array.from({ length: size }, () => draw.byte())),
    compare,
    ...(sizes ? { sizes } : {}),
  };
}

interface TypeScriptApi {
  transpileModule(source: string, opts: { fileName: string; compilerOptions: Record<string, unknown> }): { outputText: string };
  ModuleKind: { ESNext: number };
  ScriptTarget: { ES2022: number };
}

function loadTypeScript(refPath: string): TypeScriptApi {
  for (const from of [refPath, import.meta.url]) {
    try {
      return createRequire(from)("typescript") as TypeScriptApi;
    } catch {
      // next place
    }
  }
  throw new ReferenceLoadError(`${refPath} is TypeScript: install the typescript package in its project (npm install -D typescript), or write the reference in .js/.mjs`);
}
