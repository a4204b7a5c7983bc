// What `distx kernel build` builds for its arguments. A file, or a Cargo project folder, is one
// kernel; any other folder stands for the kernel sources directly in it (kernels/c,
// kernels/rust, kernels/assembly/examples), so one command builds a folder of examples.
// Light on purpose: the CLI loads it before deciding whether the AssemblyScript compiler is needed.
import { existsSync, readFileSync, statSync } from "node:fs";
import { readdir } from "node:fs/promises";
import path from "node:path";
import { GPU_SOURCE_PATTERN } from "../gpu/build.js";

/** A file `distx kernel build` takes: AssemblyScript .ts (not .d.ts), C .c, gpu.js .gpu.js / .gpu.mjs. */
const KERNEL_FILE = /(?<!\.d)\.ts$|\.c$|\.gpu\.m?js$/;

const isDir = (p: string): boolean => {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
};

export const isCargoProject = (dir: string): boolean => isDir(dir) && existsSync(path.join(dir, "Cargo.toml"));

export class KernelSourcesError extends Error {
  override readonly name = "KernelSourcesError";
}

/**
 * The kernel sources one argument names: itself for a file or a Cargo project (folder or its
 * Cargo.toml); for any other folder, its kernel files and Cargo project subfolders, in name
 * order (not recursive). A folder with none is an error that lists what counts.
 */
export async function kernelSources(arg: string): Promise<string[]> {
  if (!isDir(arg) || isCargoProject(arg)) return [arg];
  const entries = (await readdir(arg, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const found = entries
    .filter((e) => (e.isDirectory() ? isCargoProject(path.join(arg, e.name)) : e.isFile() && KERNEL_FILE.test(e.name)))
    .map((e) => path.join(arg, e.name));
  if (found.length === 0) {
    throw new KernelSourcesError(`${arg} holds no kernel sources (.ts, .c, .gpu.js, .gpu.mjs files or Cargo project folders)`);
  }
  return found;
}

/** The <name> a source builds to (<name>.wasm or <name>.gpu.json, and <name>.manifest.json), as the builders name it. */
export function kernelOutputName(source: string): string {
  const cargo = path.basename(source) === "Cargo.toml" ? path.dirname(source) : isCargoProject(source) ? source : undefined;
  if (cargo !== undefined) {
    const pkg = /^\s*name\s*=\s*"([A-Za-z0-9_-]+)"/m.exec(readFileSync(path.join(cargo, "Cargo.toml"), "utf8"))?.[1];
    return (pkg ?? path.basename(cargo)).replace(/-/g, "_");
  }
  const base = path.basename(source);
  return GPU_SOURCE_PATTERN.test(base) ? base.replace(GPU_SOURCE_PATTERN, "") : base.replace(/\.(ts|c)$/, "");
}

/**
 * Expands every argument and refuses two sources that would write the same files into one
 * out-dir (kernels/c/saxpy.c beside kernels/assembly/examples/saxpy.ts): the second would
 * silently replace the first.
 */
export async function expandKernelSources(args: string[]): Promise<string[]> {
  const sources = (await Promise.all(args.map(kernelSources))).flat();
  const byName = new Map<string, string>();
  for (const s of sources) {
    const name = kernelOutputName(s);
    const other = byName.get(name);
    if (other !== undefined && path.resolve(other) !== path.resolve(s)) {
      throw new KernelSourcesError(`${other} and ${s} both build to "${name}" and would overwrite each other: build them into different --out-dir folders`);
    }
    byName.set(name, s);
  }
  return [...new Set(sources)];
}
