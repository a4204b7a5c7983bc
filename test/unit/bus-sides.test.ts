// The task bus has two sides with one owner each: the scheduler's (TaskBus, scheduler/backends/)
// and the agents' (AgentBus, common/agent-bus.ts). scheduler/ holds none of the agents' side:
// no file there defines or calls what an agent does on the bus.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../common/paths.js";

const AGENT_SIDE = /\b(subscribeAssignments|publishEvents|publishLoad)\s*[(:]/;

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFiles(path.join(dir, e.name)) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : [],
  );
}

describe("bus sides", () => {
  it("no file in scheduler/ defines or calls the agents' side of the bus", () => {
    const root = repoRoot();
    const found = tsFiles(path.join(root, "scheduler"))
      .flatMap((f) => readFileSync(f, "utf8").split("\n").map((line, i) => ({ f, line, i })))
      .filter(({ line }) => AGENT_SIDE.test(line))
      .map(({ f, line, i }) => `${path.relative(root, f)}:${i + 1}: ${line.trim()}`);
    expect(found).toEqual([]);
  });

  it("the agents' side is where the scan looks for it (the scan finds what it should)", () => {
    const text = readFileSync(path.join(repoRoot(), "common", "agent-bus.ts"), "utf8");
    expect(AGENT_SIDE.test(text)).toBe(true);
  });
});
