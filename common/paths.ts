// Locates files that ship beside the code (proto/, build/kernels/) both when running from
// source (tsx, vitest) and from the compiled dist/ tree.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let cachedRoot: string | undefined;

export function repoRoot(): string {
  if (cachedRoot) return cachedRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "distributex") {
      cachedRoot = dir;
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find the DistributeX package root above " + import.meta.url);
    dir = parent;
  }
}

export const protoDir = (): string => join(repoRoot(), "proto");
export const protoFile = (): string => join(protoDir(), "distributex", "v1", "distributex.proto");
export const builtKernelsDir = (): string => join(repoRoot(), "build", "kernels");
