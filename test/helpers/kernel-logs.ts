// The job and the expectations of the kernel-log e2e tests (memory backends, and Kafka + Redis):
// one task that logs three lines (an escape sequence, a newline and invalid UTF-8 among them),
// one that logs past the agent's cap, one that logs and then traps, one that logs and then hangs
// until its timeout stops it.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { expect } from "vitest";
import type { DistributeXClient, TaskResult } from "../../client/index.js";
import { cliEntry } from "../../cli/local-cluster.js";
import { repoRoot } from "../../common/paths.js";
import { fixtureKernel } from "./fixtures.js";

/** The agents of these tests run with --kernel-log-bytes 2048 (and the default 100 lines). */
export const LOG_TEST_AGENT_ARGS = ["--kernel-log-bytes", "2048"];

/** Runs the log fixture's three tasks (see test/fixtures/kernels/log.ts) to the end; returns the job id and its results. */
export async function runLogJob(client: DistributeXClient): Promise<{ jobId: string; state: string; results: TaskResult[] }> {
  const { kernelId } = await client.registerKernel(await fixtureKernel("log"), { name: "log" });
  // No result cache: a cached result did not run, so it has no log.
  const { job, results } = await client.run({ kernelId, inputs: [new Uint8Array([0, 5]), new Uint8Array([1]), new Uint8Array([2]), new Uint8Array([4])], skipResultCache: true, maxAttempts: 1, timeoutMs: 5000 });
  return { jobId: job.jobId, state: job.state, results };
}

/** What the typed client must return for that job. */
export function expectLogResults(state: string, results: TaskResult[]): void {
  expect(state).toBe("JOB_STATE_FAILED");
  expect(results.map((r) => r.state)).toEqual(["TASK_STATE_SUCCEEDED", "TASK_STATE_SUCCEEDED", "TASK_STATE_FAILED", "TASK_STATE_FAILED"]);
  expect(results[0]!.logs).toEqual(["hello from task 5", "forged \\x1b[2J\\x0aERROR line", "A\ufffd\ufffdB"]);
  // 2048 bytes: 40 lines of 50 bytes, the 41st cut to 48, 259 dropped (2 + 259 × 50 bytes).
  const capped = results[1]!.logs;
  expect(capped).toHaveLength(42);
  expect(capped[0]).toBe(`line 000 ${"x".repeat(41)}`);
  expect(capped[40]).toBe(`line 040 ${"x".repeat(39)}`);
  expect(capped[41]).toBe("[distx] log cap reached (2048 bytes, 100 lines per task): dropped 259 more line(s), 12952 byte(s)");
  // A trap after logging: the lines come back with the failure.
  expect(results[2]!.error?.code).toBe("TRAP");
  expect(results[2]!.logs).toEqual(["about to trap"]);
  // A hang after logging: its worker is stopped, the lines still come back.
  expect(results[3]!.error?.code).toBe("TIMEOUT");
  expect(results[3]!.logs).toEqual(["spinning 1", "spinning 2", "spinning 3"]);
}

/** `distx result JOB --logs` as a user runs it; checks its lines (and that without --logs it says where they are). */
export async function expectLogsFromCli(jobId: string, address: string, env: NodeJS.ProcessEnv): Promise<void> {
  const distx = (args: string[]) => promisify(execFile)(process.execPath, [cliEntry(), "result", jobId, ...args, "--scheduler", address], { env, cwd: repoRoot(), timeout: 60_000 });
  const plain = (await distx([])).stdout;
  expect(plain).toContain(`4 task(s) logged lines (0, 1, 2, 3): distx result ${jobId} --logs`);
  expect(plain).not.toContain("[task 0]");
  const { stdout } = await distx(["--logs"]);
  const lines = stdout.split("\n");
  expect(lines).toContain("[task 0] hello from task 5");
  expect(lines).toContain("[task 0] forged \\x1b[2J\\x0aERROR line");
  expect(lines).toContain("[task 1] line 000 " + "x".repeat(41));
  expect(lines).toContain("[task 1] [distx] log cap reached (2048 bytes, 100 lines per task): dropped 259 more line(s), 12952 byte(s)");
  expect(lines).toContain("[task 2] about to trap");
  expect(lines).toContain("[task 3] spinning 3");
  expect(lines.filter((l) => l.startsWith("[task 1] "))).toHaveLength(42);
  // Nothing the kernel wrote reaches the terminal raw.
  expect(stdout).not.toMatch(/\x1b/);
}
