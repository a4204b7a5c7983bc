// Where AssemblyScript finds `import ... from "distributex/kernel"` (the SDK, kernel/index.ts).
// asc resolves a package import as <dir>/distributex/kernel/index.ts for each node_modules
// folder above the source, then each `--path` folder. In a project that depends on the package
// the first already works; a kernel elsewhere (the repo's own examples, a global install used
// on a loose file) needs a `--path` folder holding a `distributex` entry that is this package.
import { existsSync, mkdirSync, symlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { repoRoot } from "../../common/paths.js";

let cached: string | undefined;

/** A folder F with F/distributex = this package's root (its own node_modules parent when installed). */
export function sdkSearchPath(): string {
  if (cached) return cached;
  const root = repoRoot();
  if (path.basename(root) === "distributex") return (cached = path.dirname(root));
  // A checkout: a link in a temp folder named after the checkout, so two checkouts never share one.
  const dir = path.join(os.tmpdir(), `distx-sdk-${Buffer.from(root).toString("hex").slice(-40)}`);
  const link = path.join(dir, "distributex");
  if (!existsSync(link)) {
    mkdirSync(dir, { recursive: true });
    try {
      symlinkSync(root, link, "dir");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
  return (cached = dir);
}
