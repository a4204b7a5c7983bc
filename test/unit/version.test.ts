// Which agents a scheduler accepts (issue #15, item 6): same major, agent minor equal or one behind.
// The processes' side (refusal over gRPC, a rolling upgrade) is test/e2e/upgrade/.
import { describe, expect, it } from "vitest";
import { agentVersionProblem, packageVersion, parseVersion } from "../../common/version.js";
import { readFileSync } from "node:fs";

describe("agent version rule", () => {
  it("accepts the same minor and one minor older, any patch", () => {
    expect(agentVersionProblem("0.2.0", "0.2.0")).toBeUndefined();
    expect(agentVersionProblem("0.1.7", "0.2.3")).toBeUndefined();
    expect(agentVersionProblem("1.4.0", "1.5.0")).toBeUndefined();
    expect(agentVersionProblem("0.2.1-rc.1", "0.2.0")).toBeUndefined();
  });

  it("refuses two minors older, another major, a newer agent or a non-version, naming both versions and what to do", () => {
    expect(agentVersionProblem("0.1.0", "0.3.0")).toBe(
      "agent version 0.1.0 is more than one minor version older than scheduler version 0.3.0; not retryable: install DistributeX 0.3.x (or 0.2.x) on this agent",
    );
    expect(agentVersionProblem("1.2.0", "2.0.0")).toMatch(/^agent version 1\.2\.0 and scheduler version 2\.0\.0 differ in major version; not retryable: install DistributeX 2\.0\.x/);
    expect(agentVersionProblem("0.3.0", "0.2.0")).toMatch(/^agent version 0\.3\.0 is newer than scheduler version 0\.2\.0; upgrade the scheduler first/);
    expect(agentVersionProblem("banana", "0.2.0")).toMatch(/not a version/);
  });

  it("judges an agent that announced nothing as 0.1.0 (it predates the announcement)", () => {
    expect(agentVersionProblem("", "0.2.0")).toBeUndefined();
    expect(agentVersionProblem("", "0.3.0")).toMatch(/^agent version \(none announced: 0\.1\.0 or older\) is more than one minor/);
  });

  it("reads this process's version from package.json", () => {
    expect(packageVersion()).toBe((JSON.parse(readFileSync("package.json", "utf8")) as { version: string }).version);
    expect(parseVersion(packageVersion())).toBeDefined();
  });
});
