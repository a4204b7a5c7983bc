// Kernel logs end to end (issue #16 item 6) on a local cluster of separate processes (memory
// backends, real gRPC over loopback): what the kernel logs comes back with each task's result
// through the typed client and `distx result --logs`, capped by the agent's --kernel-log-bytes,
// sanitised, and with the failure of a task that trapped, or hung until its timeout, after logging. `distx kernel run`
// prints the lines on stderr. The same job on Kafka + Redis: backends/kernel-logs-kafka.test.ts.
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliEntry } from "../../cli/local-cluster.js";
import { startTestCluster, type TestCluster } from "../helpers/cluster.js";
import { fixtureKernel } from "../helpers/fixtures.js";
import { expectLogResults, expectLogsFromCli, LOG_TEST_AGENT_ARGS, runLogJob } from "../helpers/kernel-logs.js";

let t: TestCluster;

beforeAll(async () => {
  t = await startTestCluster("kernel-logs", { agents: 1, agentArgs: () => LOG_TEST_AGENT_ARGS });
}, 120_000);

afterAll(async () => {
  await t?.stop();
});

describe("kernel logs on a local cluster", () => {
  it("come back per task through the typed client and distx result --logs, capped, sanitised, and with a trap or a timeout", async () => {
    const { jobId, state, results } = await runLogJob(t.client);
    expectLogResults(state, results);
    await expectLogsFromCli(jobId, t.address, t.cluster.clientEnv());
  }, 120_000);

  it("distx kernel run prints the kernel's lines on stderr, also when it traps", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "distx-klog-run-"));
    const wasm = path.join(dir, "log.wasm");
    writeFileSync(wasm, await fixtureKernel("log"));
    writeFileSync(path.join(dir, "ok.bin"), Buffer.from([0, 3]));
    writeFileSync(path.join(dir, "trap.bin"), Buffer.from([2]));
    const run = promisify(execFile);
    const ok = await run(process.execPath, [cliEntry(), "kernel", "run", wasm, "--input", path.join(dir, "ok.bin")], { timeout: 60_000 });
    expect(ok.stdout.trim()).toBe("0003");
    expect(ok.stderr.split("\n").slice(0, 3)).toEqual(["log: hello from task 3", "log: forged \\x1b[2J\\x0aERROR line", "log: A\ufffd\ufffdB"]);
    const trapped = await run(process.execPath, [cliEntry(), "kernel", "run", wasm, "--input", path.join(dir, "trap.bin")], { timeout: 60_000 }).then(
      () => undefined,
      (err: { code: number; stderr: string }) => err,
    );
    expect(trapped?.code).toBe(1);
    expect(trapped?.stderr).toMatch(/^log: about to trap\ndistx: the kernel failed TRAP: kernel trapped: unreachable/);
  }, 60_000);
});
