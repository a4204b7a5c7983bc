// The package as users get it: `npm pack` of this tree, installed into a fresh global prefix and
// into a fresh project, both outside the repo. The installed `distx` starts a scheduler and an
// agent from another directory, and a TypeScript program in the fresh project imports the typed
// client from "distributex/client" (type-checked against the shipped declarations), submits a job
// of a shipped example kernel and checks its results. Nothing may depend on the current
// directory or on a git checkout.
import type { ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../common/paths.js";
import { freePort } from "../helpers/net.js";
import { NPM_INSTALL, packTarball, sh, startInstalledCluster, stopCluster } from "../helpers/package.js";

const repo = repoRoot();
const work = mkdtempSync(path.join(os.tmpdir(), "distx-install-"));
const prefix = path.join(work, "prefix");
const app = path.join(work, "app");
const home = path.join(work, "home");
let cluster: ChildProcess | undefined;

afterAll(async () => {
  await stopCluster(cluster);
  rmSync(work, { recursive: true, force: true });
});

describe("the npm package", () => {
  let tarball = "";

  it("packs what a user needs and nothing of the checkout", () => {
    const packed = packTarball(work);
    tarball = packed.tarball;
    const files = packed.files;
    for (const f of ["bin/distx.js", "dist/cli/main.js", "dist/client/index.js", "dist/client/index.d.ts", "dist/agent/gpu/executor.js", "proto/distributex/v1/distributex.proto", "build/kernels/saxpy.wasm", "build/kernels/calibration.wasm", "kernels/assembly/distx.ts", "kernel/index.ts", "kernels/README.md", "deploy/systemd/distx-agent.service", "deploy/kubernetes/agents.yaml", "LICENSE.md", "README.md"]) {
      expect(files.has(f), f).toBe(true);
    }
    for (const f of files) expect(f, "tests, benches and sources stay out").not.toMatch(/^(dist\/(test|bench)\/|test\/|bench\/|scheduler\/|agent\/|\.ci\/)/);
  });

  it("installs globally and as a dependency; distx, the client and its types work from outside the repo", async () => {
    // 1. Globally, into a fresh prefix; the command runs from a directory that is not the repo.
    sh("npm", [...NPM_INSTALL, "-g", "--prefix", prefix, tarball], work);
    const distx = path.join(prefix, "bin", "distx");
    expect(sh(distx, ["--help"], work)).toMatch(/Usage: distx/);
    // The service unit comes from the package too, and runs the installed command.
    const etc = path.join(work, "etc");
    sh(distx, ["agent", "install", "--scheduler", "10.1.2.3:7070", "--ca-hash", `sha256:${"0".repeat(64)}`, "--user", "root", "--no-create-user", "--unit-dir", etc, "--config-dir", etc, "--no-systemctl"], work);
    expect(readFileSync(path.join(etc, "distx-agent.service"), "utf8")).toMatch(new RegExp(`^ExecStart=\\S+ --initial-old-space-size=128 ${prefix}/lib/node_modules/distributex/bin/distx\\.js agent --config ${etc}/agent\\.json$`, "m"));

    // 2. A fresh project depending on the tarball, with a TypeScript program using the client.
    mkdirSync(app, { recursive: true });
    writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "distx-user-app", private: true, type: "module" }));
    sh("npm", [...NPM_INSTALL, tarball, "@types/node@20"], app);
    writeFileSync(
      path.join(app, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, types: ["node"], skipLibCheck: false, outDir: "out" }, include: ["main.ts"] }),
    );
    writeFileSync(
      path.join(app, "main.ts"),
      `import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { DistributeXClient, type TaskResult } from "distributex/client";

// saxpy: y = a*x + y over f32; input f32 a, u32 n, f32 x[n], f32 y[n].
function saxpyInput(a: number, x: number[], y: number[]): Uint8Array {
  const b = Buffer.alloc(8 + 8 * x.length);
  b.writeFloatLE(a, 0);
  b.writeUInt32LE(x.length, 4);
  x.forEach((v, i) => b.writeFloatLE(v, 8 + 4 * i));
  y.forEach((v, i) => b.writeFloatLE(v, 8 + 4 * x.length + 4 * i));
  return b;
}

const client = DistributeXClient.fromProfile(process.env.DISTX_HOME);
await client.waitForReady(30_000);
const wasm = await readFile(fileURLToPath(import.meta.resolve("distributex/kernels/saxpy.wasm")));
const { kernelId } = await client.registerKernel(wasm, { name: "saxpy" });
const { job, results } = await client.run({ kernelId, inputs: [saxpyInput(2, [1, 2, 3], [10, 20, 30]), saxpyInput(-1, [4], [4])] });
const outputs = results.map((r: TaskResult) => Array.from(new Float32Array(r.output.buffer, r.output.byteOffset, r.output.byteLength / 4)));
console.log(JSON.stringify({ state: job.state, outputs }));
client.close();
`,
    );
    sh(process.execPath, [path.join(repo, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], app);

    // 3. A cluster from the installed distx, started from the app's directory.
    const port = await freePort();
    cluster = await startInstalledCluster(distx, app, home, port);

    // 4. The program, run from its own directory against that cluster.
    const answer = JSON.parse(sh(process.execPath, [path.join("out", "main.js")], app, { DISTX_HOME: home }).trim().split("\n").pop()!) as { state: string; outputs: number[][] };
    expect(answer).toEqual({ state: "JOB_STATE_SUCCEEDED", outputs: [[12, 24, 36], [0]] });
  }, 600_000);
});
