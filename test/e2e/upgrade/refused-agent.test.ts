// Version announcement and refusal (issue #15, item 6) across real processes: a scheduler of
// version 0.3.0 (a copy of this build with its package.json changed: test/helpers/versioned-build.ts)
// accepts an agent of 0.2.0, and refuses one of 0.1.0 (two minors older: this tree) and one of 1.3.0
// (another major) with FAILED_PRECONDITION naming both versions; a refused agent exits non-zero
// instead of retrying for ever. `distx nodes` shows each node's version.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { cliEntry } from "../../../cli/local-cluster.js";
import { packageVersion } from "../../../common/version.js";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";
import { until } from "../../helpers/poll.js";
import { versionedBuild, type VersionedBuild } from "../../helpers/versioned-build.js";

let t: TestCluster;
const builds: VersionedBuild[] = [];

beforeAll(async () => {
  const scheduler = versionedBuild("0.3.0");
  builds.push(scheduler, versionedBuild("0.2.0"), versionedBuild("1.3.0"));
  t = await startTestCluster("refused-agent", { agents: 0, cliEntry: scheduler.entry });
}, 60_000);

afterAll(async () => {
  await t?.stop();
  for (const b of builds) b.remove();
});

it("refuses agents two minors older or of another major with a clear message, and accepts one minor older", { timeout: 90_000 }, async () => {
  expect(packageVersion()).toBe("0.1.0"); // the tree is the old release here
  const [, minorOlder, otherMajor] = builds;
  const old = t.cluster.startAgent(0, ["--no-calibrate"], cliEntry());
  const major = t.cluster.startAgent(1, ["--no-calibrate"], otherMajor!.entry);
  const ok = t.cluster.startAgent(2, ["--no-calibrate"], minorOlder!.entry);

  // Refused agents stop at once, non-zero, saying which versions and what to do (not retrying for ever).
  expect(await old.exited).not.toBe(0);
  expect(old.lastError).toMatch(/refused this agent: agent version 0\.1\.0 is more than one minor version older than scheduler version 0\.3\.0; not retryable: install DistributeX 0\.3\.x \(or 0\.2\.x\) on this agent/);
  expect(await major.exited).not.toBe(0);
  expect(major.lastError).toMatch(/agent version 1\.3\.0 and scheduler version 0\.3\.0 differ in major version/);

  // The one minor older joins, and is listed with its version; the refused ones were never registered.
  // Polled here, not with waitForNodes: that one fails as soon as any agent has exited, and the
  // refused ones have (it passed only when the accepted agent was READY at its first look).
  await until("the minor-older agent to be READY", async () => (await t.client.listNodes()).some((n) => n.state === "NODE_STATE_READY") || ok.child.exitCode !== null);
  expect(ok.child.exitCode, ok.lastError).toBeNull();
  const nodes = await t.client.listNodes(true);
  expect(nodes.map((n) => n.agentVersion)).toEqual(["0.2.0"]);
  expect(ok.child.exitCode).toBeNull();
  const { stdout } = await promisify(execFile)(process.execPath, [cliEntry(), "nodes", "--scheduler", t.address], { env: t.cluster.clientEnv() });
  expect(stdout).toMatch(/version/);
  expect(stdout).toMatch(/0\.2\.0/);
});
