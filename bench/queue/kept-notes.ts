// Bench results files are rewritten on every run; hand-written readings and comparisons below
// this marker survive the rerun (the bench rewrites only what it measured).
import { readFile } from "node:fs/promises";
import path from "node:path";
import { repoRoot } from "../../common/paths.js";

export const NOTES_MARKER = "<!-- notes: kept across reruns -->";

/** The notes part of a results file (from the marker on), or just the marker for a new file. */
export async function keptNotes(relativePath: string): Promise<string> {
  const old = await readFile(path.join(repoRoot(), relativePath), "utf8").catch(() => "");
  const at = old.indexOf(NOTES_MARKER);
  return at < 0 ? `\n${NOTES_MARKER}\n` : "\n" + old.slice(at);
}
