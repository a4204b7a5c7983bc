// Issue #16, "from an empty folder to a tested kernel", as a kernel author does it: outside the
// repo and from the installed package only, `distx kernel init` scaffolds a project, which is
// built and tested by its own `npm test` as written (nothing edited: the kernel imports
// "distributex/kernel" from node_modules, the test runs `distx kernel test` and `kernel run`);
// `kernel run` gives an output, and a job on a local cluster of the same installed package gives
// the same bytes for the same input.
import type { ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../helpers/net.js";
import { NPM_INSTALL, packTarball, sh, startInstalledCluster, stopCluster } from "../helpers/package.js";

const work = mkdtempSync(path.join(os.tmpdir(), "distx-kernel-sdk-"));
const home = path.join(work, "home");
let cluster: ChildProcess | undefined;

afterAll(async () => {
  await stopCluster(cluster);
  rmSync(work, { recursive: true, force: true });
});

describe("a kernel project from distx kernel init", () => {
  it("builds and tests with its own npm test, runs locally, and a job on a cluster gives the same output", async () => {
    const { tarball } = packTarball(work);
    // The tool that scaffolds: the package installed in a folder of its own.
    const tools = path.join(work, "tools");
    mkdirSync(tools);
    writeFileSync(path.join(tools, "package.json"), JSON.stringify({ name: "tools", private: true }));
    sh("npm", [...NPM_INSTALL, tarball], tools);
    const toolDistx = path.join(tools, "node_modules", ".bin", "distx");
    expect(sh(toolDistx, ["kernel", "init", "scale2"], work)).toMatch(/created scale2: package\.json, assembly\/scale2\.ts, reference\.ts, test\/run\.test\.mjs/);

    // The project as scaffolded; its dependencies installed (distributex from the tarball). The
    // tools' node_modules moves in first, so npm only adds what is missing (typescript): one
    // full install per run, not two.
    const project = path.join(work, "scale2");
    renameSync(path.join(tools, "node_modules"), path.join(project, "node_modules"));
    sh("npm", [...NPM_INSTALL, "--save-dev", tarball], project);
    const tested = sh("npm", ["test"], project);
    expect(tested).toMatch(/ok: \d+ cases match the reference/);
    expect(tested).toMatch(/# pass 1/);

    // kernel run, then kernel test again on its own, from the project's installed distx.
    const distx = path.join(project, "node_modules", ".bin", "distx");
    const input = Buffer.alloc(4 + 4 * 5);
    input.writeUInt32LE(5, 0);
    [0.5, -1, 1e30, 3, -0].forEach((x, i) => input.writeFloatLE(x, 4 + 4 * i));
    writeFileSync(path.join(project, "in.bin"), input);
    expect(sh(distx, ["kernel", "run", "build/scale2.wasm", "--input", "in.bin", "--format", "f32"], project).trim().split("\n")).toEqual(["2", "-1", String(2 * Math.fround(1e30)), "7", "1"]);
    sh(distx, ["kernel", "run", "build/scale2.wasm", "--input", "in.bin", "--out", "local.bin"], project);
    expect(sh(distx, ["kernel", "test", "build/scale2.wasm", "--reference", "reference.ts", "--seed", "7", "--runs", "1"], project)).toMatch(/^ok: 12 cases match the reference/);

    // The same input as a job on a cluster of the installed package: the same bytes.
    const port = await freePort();
    cluster = await startInstalledCluster(distx, project, home, port);
    const env = { DISTX_HOME: home };
    const kernelId = sh(distx, ["kernel", "register", "build/scale2.wasm", "--scheduler", `127.0.0.1:${port}`], project, env).trim();
    expect(kernelId).toMatch(/^[0-9a-f]{64}$/);
    sh(distx, ["submit", "-k", kernelId, "--input", "in.bin", "--out-dir", "job-out", "--no-progress", "--scheduler", `127.0.0.1:${port}`], project, env);
    expect(readFileSync(path.join(project, "job-out", "0.bin"))).toEqual(readFileSync(path.join(project, "local.bin")));
  }, 600_000);
});
