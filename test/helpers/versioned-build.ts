// "Another version built from the tree" for the upgrade tests: a copy of this checkout's build
// (dist/, proto/, build/kernels/) beside a package.json whose version is changed, with
// node_modules linked. Both daemons read their version from the package.json above their code
// (common/version.ts), so the copy announces `version` and behaves otherwise exactly as the tree.
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { repoRoot } from "../../common/paths.js";

export interface VersionedBuild {
  version: string;
  /** Its `distx` entry point (for LocalCluster's cliEntry / startAgent). */
  entry: string;
  remove(): void;
}

export function versionedBuild(version: string): VersionedBuild {
  const root = repoRoot();
  const dir = mkdtempSync(path.join(os.tmpdir(), `distx-v${version}-`));
  for (const part of ["dist", "proto", path.join("build", "kernels")]) cpSync(path.join(root, part), path.join(dir, part), { recursive: true });
  const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as Record<string, unknown>;
  writeFileSync(path.join(dir, "package.json"), JSON.stringify({ ...pkg, version }, null, 2));
  symlinkSync(path.join(root, "node_modules"), path.join(dir, "node_modules"), "dir");
  return { version, entry: path.join(dir, "dist", "cli", "main.js"), remove: () => rmSync(dir, { recursive: true, force: true }) };
}
