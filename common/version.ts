// The release both daemons announce and the rule for which agents a scheduler accepts (issue #15,
// item 6). The version is the package's own (package.json beside the code that runs), so a copy of
// the build with another package.json is another version: that is how the rolling-upgrade test
// builds "two versions from the tree" (test/e2e/upgrade/), with no override hook in the code.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "./paths.js";

let cached: string | undefined;

/** This process's DistributeX version (package.json's "version"). */
export function packageVersion(): string {
  cached ??= (JSON.parse(readFileSync(join(repoRoot(), "package.json"), "utf8")) as { version: string }).version;
  return cached;
}

export interface SemVer {
  major: number;
  minor: number;
  patch: number;
}

export function parseVersion(v: string): SemVer | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$/.exec(v.trim());
  return m ? { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) } : undefined;
}

/**
 * Why a scheduler of version `scheduler` must refuse an agent of version `agent`, or undefined when
 * it accepts it. Accepted: the same major, and the agent's minor at most one behind (a rolling
 * upgrade replaces agents after their scheduler) and never ahead (an older scheduler cannot know
 * what a newer agent expects). An agent that announces nothing predates the announcement (0.1.x
 * sent an empty hello) and is judged as 0.1.0.
 */
export function agentVersionProblem(agent: string, scheduler: string): string | undefined {
  const a = parseVersion(agent || "0.1.0");
  const s = parseVersion(scheduler);
  if (!s) return undefined; // a scheduler that cannot read its own version judges no one
  const shown = agent || "(none announced: 0.1.0 or older)";
  if (!a) return `agent version ${shown} is not a version (major.minor.patch); this scheduler is ${scheduler}`;
  const fix = `not retryable: install DistributeX ${s.major}.${s.minor}.x (or ${s.major}.${Math.max(0, s.minor - 1)}.x) on this agent`;
  if (a.major !== s.major) return `agent version ${shown} and scheduler version ${scheduler} differ in major version; ${fix}`;
  if (a.minor < s.minor - 1) return `agent version ${shown} is more than one minor version older than scheduler version ${scheduler}; ${fix}`;
  if (a.minor > s.minor) return `agent version ${shown} is newer than scheduler version ${scheduler}; upgrade the scheduler first (a scheduler accepts agents of its own minor version or one older), not retryable until then`;
  return undefined;
}
