// A store call whose promise is dropped (`void store.x(…)`) crashes the daemon when it rejects:
// Node treats an unhandled rejection as fatal. Store writes reject by design (fenced while the
// lease is unconfirmed, Redis refusing writes), and a dropped trim killed a deposed leader in the
// chaos run (seed 1, twice in 36 minutes). Every dropped store promise must carry its own catch.
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../common/paths.js";

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith(".ts") ? [p] : [];
  });
}

describe("dropped store promises", () => {
  it("every `void …store.…(…)` statement in the daemons has a .catch", () => {
    const offenders: string[] = [];
    for (const dir of ["scheduler", "agent", "common"]) {
      for (const file of tsFiles(path.join(repoRoot(), dir))) {
        // Statements, not lines: a call may span several.
        const statements = readFileSync(file, "utf8").split(/;\s*\n/);
        for (const st of statements) {
          if (/\bvoid\s+[\w.!?()[\]]*\bstore\.\w+\(/.test(st) && !/\.catch\(/.test(st)) offenders.push(`${path.relative(repoRoot(), file)}: ${st.trim().split("\n").pop()}`);
        }
      }
    }
    expect(offenders).toEqual([]);
  });
});
