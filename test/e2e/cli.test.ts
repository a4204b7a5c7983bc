// The distx CLI as a user runs it: real processes, real output, real exit codes.
import { execFile, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DistributeXClient } from "../../client/index.js";
import { cliEntry, DAEMON_NODE_FLAGS } from "../../cli/local-cluster.js";
import { repoRoot } from "../../common/paths.js";
import { freePort } from "../helpers/net.js";

const run = promisify(execFile);

async function distx(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cliEntry(), ...args], { env: { ...process.env, ...env }, cwd: repoRoot(), timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let up: ReturnType<typeof spawn>;
let address = "";
let adminPort = 0;
let upOutput = "";

beforeAll(async () => {
  // `distx up` runs the scheduler and its agents as separate processes until it is signalled.
  adminPort = await freePort();
  up = spawn(process.execPath, [cliEntry(), "up", "--agents", "2", "--workers", "1", "--port", "0", "--admin-port", String(adminPort)], { stdio: ["ignore", "ignore", "pipe"] });
  address = await new Promise<string>((resolve, reject) => {
    let buf = "";
    up.stderr!.on("data", (d: Buffer) => {
      buf += d.toString();
      upOutput = buf;
      const m = /scheduler at (\S+) with 2 agents/.exec(buf);
      if (m) resolve(m[1]!);
    });
    up.on("exit", (code) => reject(new Error(`distx up exited with ${code}: ${buf}`)));
  });
});

afterAll(async () => {
  if (up && up.exitCode === null) {
    const exited = new Promise((r) => up.on("exit", r));
    up.kill("SIGINT");
    await exited;
  }
});

describe("distx CLI", () => {
  it("runs as an executable, and `distx up` starts its daemons with their heap flag", async () => {
    const { stdout } = await run(path.join(repoRoot(), "bin", "distx.js"), ["--version"], { cwd: repoRoot() });
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const daemons = execFileSync("pgrep", ["-P", String(up.pid)]).toString().trim().split("\n").map(Number);
    expect(daemons).toHaveLength(3); // the scheduler and two agents
    for (const pid of daemons) expect(readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")).toEqual(expect.arrayContaining(DAEMON_NODE_FLAGS));
  });

  it("`distx up --admin-port` serves the scheduler's dashboard there and prints its URL", async () => {
    const deadline = Date.now() + 10_000;
    while (!/dashboard at \S+/.test(upOutput) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const url = /dashboard at (\S+?),/.exec(upOutput)?.[1];
    expect(url, upOutput).toBe(`http://127.0.0.1:${adminPort}/dashboard`);
    const res = await fetch(url!);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/html/);
    expect(upOutput).toMatch(new RegExp(`metrics at http://127\\.0\\.0\\.1:${adminPort}/metrics`));
  });

  it("rejects bad configuration with the field named and exit code 2", async () => {
    const r = await distx(["agent", "--workers", "-3"], { DISTX_SCHEDULER: "no-port-here" });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/invalid agent configuration/);
    expect(r.stderr).toMatch(/workers: must be ≥ 0 \(got "-3" from flag --workers\)/);
    expect(r.stderr).toMatch(/scheduler: must be host:port.*from env DISTX_SCHEDULER/);
    const dir = mkdtempSync(path.join(os.tmpdir(), "distx-cli-"));
    const file = path.join(dir, "bad.json");
    await import("node:fs/promises").then((fs) => fs.writeFile(file, JSON.stringify({ scheduler: { port: "http" } })));
    const s = await distx(["scheduler", "--config", file]);
    expect(s.code).toBe(2);
    expect(s.stderr).toMatch(/port: must be a number.*from file/);
  });

  it("says clearly when the scheduler cannot be reached", async () => {
    const r = await distx(["nodes", "--scheduler", "127.0.0.1:1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/distx: UNAVAILABLE/);
    const bad = await distx(["jobs", "--scheduler", "localhost"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--scheduler "localhost": must be host:port/);
  });

  it("builds a kernel with a manifest", async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), "distx-build-"));
    const r = await distx(["kernel", "build", "kernels/assembly/examples/saxpy.ts", "--out-dir", out]);
    expect(r.code).toBe(0);
    const manifest = JSON.parse(readFileSync(path.join(out, "saxpy.manifest.json"), "utf8"));
    expect(manifest).toMatchObject({ name: "saxpy", entry: "distx_run", abi: "distx-abi-1", kind: "wasm" });
    expect(r.stdout).toContain(manifest.sha256);
    const missing = await distx(["kernel", "build", "nope.ts"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no such file: nope.ts/);
  });

  it("submits an example job, checks its results and lists it in jobs, nodes and result", async () => {
    const outDir = mkdtempSync(path.join(os.tmpdir(), "distx-out-"));
    const r = await distx(["submit", "--scheduler", address, "--example", "montecarlo_pi", "--tasks", "6", "--out-dir", outDir, "--no-progress"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/succeeded: 6\/6 tasks succeeded, 0 failed/);
    expect(r.stdout).toMatch(/pi ≈ 3\.1/);
    expect(r.stdout).toMatch(/check: all 6 task outputs match the JS reference/);
    expect(existsSync(path.join(outDir, "5.bin"))).toBe(true);
    const jobId = /job (job-[0-9a-f-]{36})/.exec(r.stdout)![1]!;

    const jobs = await distx(["jobs", "--scheduler", address]);
    expect(jobs.code).toBe(0);
    expect(jobs.stdout).toContain(jobId);
    expect(jobs.stdout).toMatch(/succeeded/);

    const nodes = await distx(["nodes", "--scheduler", address]);
    expect(nodes.code).toBe(0);
    expect(nodes.stdout.match(/node-[0-9a-f]{8}/g)).toHaveLength(2);
    expect(nodes.stdout).toMatch(/ready/);

    const result = await distx(["result", jobId, "--scheduler", address]);
    expect(result.code).toBe(0);
    expect(result.stdout.split("\n").filter((l) => /│ \d+ +│ succeeded/.test(l))).toHaveLength(6);

    const cancel = await distx(["cancel", jobId, "--scheduler", address]);
    expect(cancel.code).toBe(1);
    expect(cancel.stderr).toMatch(/FAILED_PRECONDITION: job .* has already finished/);
  });

  it("drains running tasks on SIGTERM instead of dropping them", async () => {
    const client = new DistributeXClient(address);
    // A third agent joins, then is asked to stop while its tasks run.
    const agent = spawn(process.execPath, [cliEntry(), "agent", "--scheduler", address, "--workers", "1", "--no-calibrate"], { stdio: ["ignore", "pipe", "pipe"] });
    const logs: string[] = [];
    agent.stdout!.on("data", (d: Buffer) => logs.push(d.toString()));
    for (let i = 0; i < 100 && (await client.listNodes()).length < 3; i++) await new Promise((r) => setTimeout(r, 100));
    expect((await client.listNodes()).length).toBe(3);

    const wasm = readFileSync(path.join(repoRoot(), "build/kernels/montecarlo_pi.wasm"));
    const { kernelId } = await client.registerKernel(wasm);
    const { exampleKernels } = await import("../../kernels/reference/index.js");
    const inputs = exampleKernels.montecarlo_pi!.makeTasks({ tasks: 9, size: 9 * 10_000_000 });
    const { jobId } = await client.submitJob({ kernelId, inputs });
    // Wait until the new agent runs something, then ask it to stop.
    for (let i = 0; i < 200; i++) {
      if (logs.join("").includes('"event":"registered"')) {
        const nodes = await client.listNodes();
        const newest = nodes.sort((a, b) => b.registeredAtMs - a.registeredAtMs)[0]!;
        if (newest.assignedTasks > 0) break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    agent.kill("SIGTERM");
    const code = await new Promise((r) => agent.on("exit", r));
    expect(code).toBe(0);
    const text = logs.join("");
    expect(text).toMatch(/"event":"drained","clean":true/);
    const job = await client.waitForJob(jobId);
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    const results = await client.getResults(jobId);
    for (const r of results) expect(exampleKernels.montecarlo_pi!.check(inputs[r.taskIndex]!, r.output).ok).toBe(true);
    client.close();
  });
});
