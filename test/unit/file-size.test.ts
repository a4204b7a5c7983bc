// No file of the product (scheduler/, agent/, client/, cli/, common/, kernels/) grows past ~350 lines unless it says why: a file that long
// holds more than one concern, and the next engineer cannot see them (issue #13). A file that
// must stay whole says so in a comment holding "longer than 350 lines because".
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../common/paths.js";

const LIMIT = 360; // "about 350"
const WHY = "longer than 350 lines because";
// bench/ and test/ are left out: a bench or a test file reads top to bottom as one story.
const PRODUCT_DIRS = ["scheduler", "agent", "client", "cli", "common", "kernels"];

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...tsFiles(p));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

describe("file size", () => {
  it(`every .ts file in ${PRODUCT_DIRS.join("/, ")}/ is at most ${LIMIT} lines, or says why`, () => {
    const root = repoRoot();
    const files = PRODUCT_DIRS.flatMap((d) => tsFiles(path.join(root, d)));
    expect(files.length).toBeGreaterThan(100);
    const over = files
      .map((f) => ({ f: path.relative(root, f), text: readFileSync(f, "utf8") }))
      .filter(({ text }) => text.split("\n").length > LIMIT && !text.includes(WHY))
      .map(({ f, text }) => `${f}: ${text.split("\n").length} lines`);
    expect(over).toEqual([]);
  });
});
