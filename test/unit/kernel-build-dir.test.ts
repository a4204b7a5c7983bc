// `distx kernel build DIR`: a folder that is not a Cargo project builds the kernels directly in
// it (kernels/c, kernels/rust, kernels/assembly/examples), and two sources that would write the
// same <name>.wasm into one out-dir are refused before anything is built. The CLI runs as a user
// runs it (dist/cli/main.js: `npm run build:ts` first).
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliEntry } from "../../cli/local-cluster.js";
import { repoRoot } from "../../common/paths.js";
import { haveToolchain } from "../../kernels/toolchain/native.js";
import { expandKernelSources, kernelOutputName, kernelSources } from "../../kernels/toolchain/sources.js";

const exec = promisify(execFile);
const EXAMPLES = ["gemm", "histogram", "mandelbrot", "montecarlo_pi", "saxpy"];
const requireLangs = process.env.DISTX_KERNEL_LANG_TESTS === "require";

async function distx(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [cliEntry(), ...args], { cwd: repoRoot(), timeout: 170_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "distx-build-dir-"));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("kernel sources of a folder", () => {
  it("a folder means its kernel files and Cargo projects, in name order, not its other files or subfolders", async () => {
    const dir = path.join(tmp, "mixed");
    await mkdir(path.join(dir, "crate_b/src"), { recursive: true });
    await mkdir(path.join(dir, "notes"), { recursive: true });
    await writeFile(path.join(dir, "crate_b/Cargo.toml"), '[package]\nname = "crate-b"\n');
    for (const f of ["z.c", "a.ts", "k.gpu.js", "types.d.ts", "distx.h", "distx.rs", "README.md", "notes/n.ts"]) await writeFile(path.join(dir, f), "");
    expect((await kernelSources(dir)).map((s) => path.relative(dir, s))).toEqual(["a.ts", "crate_b", "k.gpu.js", "z.c"]);
    // A Cargo project, or a file, is one kernel.
    expect(await kernelSources(path.join(dir, "crate_b"))).toEqual([path.join(dir, "crate_b")]);
    expect(await kernelSources(path.join(dir, "z.c"))).toEqual([path.join(dir, "z.c")]);
    expect(["a.ts", "crate_b", "k.gpu.js", "z.c"].map((f) => kernelOutputName(path.join(dir, f)))).toEqual(["a", "crate_b", "k", "z"]);
    await expect(kernelSources(path.join(repoRoot(), "docs"))).rejects.toThrow(/docs holds no kernel sources \(\.ts, \.c, \.gpu\.js/);
  });

  it("the example folders list all five examples in each language", async () => {
    for (const dir of ["kernels/assembly/examples", "kernels/c", "kernels/rust"]) {
      expect((await kernelSources(path.join(repoRoot(), dir))).map(kernelOutputName)).toEqual(EXAMPLES);
    }
  });

  it("refuses two sources that would overwrite each other's output", async () => {
    const root = repoRoot();
    await expect(expandKernelSources([path.join(root, "kernels/c"), path.join(root, "kernels/assembly/examples")])).rejects.toThrow(
      /kernels\/c\/gemm\.c and .*kernels\/assembly\/examples\/gemm\.ts both build to "gemm"/,
    );
    // The same source twice is built once.
    const saxpy = path.join(root, "kernels/c/saxpy.c");
    expect(await expandKernelSources([saxpy, saxpy])).toEqual([saxpy]);
  });
});

describe("distx kernel build DIR", () => {
  it("builds a folder of AssemblyScript examples; a folder with no kernels or a clash is a usage error", async () => {
    const out = path.join(tmp, "as");
    const r = await distx(["kernel", "build", "kernels/assembly/examples", "--out-dir", out]);
    expect(r.code, r.stderr).toBe(0);
    expect((await readdir(out)).filter((f) => f.endsWith(".wasm")).sort()).toEqual(EXAMPLES.map((n) => `${n}.wasm`));
    const none = await distx(["kernel", "build", "docs"]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^distx: docs holds no kernel sources/);
    const clash = await distx(["kernel", "build", "kernels/c", "kernels/assembly/examples", "--out-dir", path.join(tmp, "clash")]);
    expect(clash.code).toBe(2);
    expect(clash.stderr).toMatch(/both build to "gemm" and would overwrite each other/);
  }, 180_000);

  for (const lang of ["c", "rust"] as const) {
    // Skips only where this language's wasm32 toolchain is missing and CI has not required it
    // (DISTX_KERNEL_LANG_TESTS=require, set by scripts/setup/50-kernel-langs.sh).
    it.skipIf(!requireLangs && !haveToolchain(lang))(`builds kernels/${lang}: the five examples`, async () => {
      const out = path.join(tmp, lang);
      const r = await distx(["kernel", "build", `kernels/${lang}`, "--out-dir", out]);
      expect(r.code, r.stderr).toBe(0);
      expect((await readdir(out)).filter((f) => f.endsWith(".wasm")).sort()).toEqual(EXAMPLES.map((n) => `${n}.wasm`));
    }, 180_000);
  }
});
