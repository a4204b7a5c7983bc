// Builds every example kernel with the real toolchain and runs task inputs through the real
// agent path (compileWasmKernel + runWasmKernel), comparing with the plain-JS references.
// The C and Rust examples (kernels/c, kernels/rust) run the same tests as their AssemblyScript
// namesakes; without clang/rustc for wasm32 they skip, except in CI (scripts/setup/50-kernel-langs.sh).
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileWasmKernel } from "../../common/kernel-abi.js";
import { runWasmKernel } from "../../agent/wasm/run-kernel.js";
import { buildKernel } from "../../kernels/toolchain/build.js";
import { haveToolchain } from "../../kernels/toolchain/native.js";
import {
  exampleKernels,
  gemmInput,
  histogramInput,
  mandelbrotInput,
  montecarloInput,
  saxpyInput,
  fillUniform,
  countHits,
} from "../../kernels/reference/index.js";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const examplesDir = path.join(repo, "kernels/assembly/examples");
const MEMORY = 256 * 1024 * 1024;

type Lang = "assemblyscript" | "c" | "rust";
/** The examples written in C and Rust too, and where their sources are. */
const NATIVE: Record<Exclude<Lang, "assemblyscript">, { names: string[]; source: (name: string) => string }> = {
  c: { names: ["gemm", "histogram", "mandelbrot", "montecarlo_pi", "saxpy"], source: (n) => path.join(repo, "kernels/c", `${n}.c`) },
  rust: { names: ["gemm", "histogram", "mandelbrot", "montecarlo_pi", "saxpy"], source: (n) => path.join(repo, "kernels/rust", n) },
};
const requireLangs = process.env.DISTX_KERNEL_LANG_TESTS === "require";
const nativeLangs = (["c", "rust"] as const).filter((l) => requireLangs || haveToolchain(l));
/** The languages an example is tested in (AssemblyScript always). */
const langsOf = (name: string): Lang[] => ["assemblyscript", ...nativeLangs.filter((l) => NATIVE[l].names.includes(name))];
const titled = (name: string, lang: Lang) => (lang === "assemblyscript" ? name : `${name} (${lang})`);

let outDir: string;
const modules = new Map<string, WebAssembly.Module>();

function moduleOf(name: string, lang: Lang): WebAssembly.Module {
  const module = modules.get(lang === "assemblyscript" ? name : `${lang}:${name}`);
  if (!module) throw new Error(`${titled(name, lang)} was not built`);
  return module;
}

function run(name: string, input: Uint8Array, lang: Lang = "assemblyscript", sharedInputs?: Uint8Array[]): Uint8Array {
  return new Uint8Array(runWasmKernel(moduleOf(name, lang), input, { memoryLimitBytes: MEMORY, seed: 7, sharedInputs }));
}

function expectMatches(name: string, input: Uint8Array, lang: Lang = "assemblyscript"): Uint8Array {
  const kernel = exampleKernels[name]!;
  const out = run(name, input, lang);
  const result = kernel.check(input, out);
  expect(result.ok, `${name}: ${result.detail}`).toBe(true);
  return out;
}

beforeAll(async () => {
  outDir = await mkdtemp(path.join(os.tmpdir(), "distx-kernels-"));
  const sources = (await readdir(examplesDir)).filter((f) => f.endsWith(".ts")).sort();
  for (const file of sources) {
    const { wasmPath, manifest } = await buildKernel(path.join(examplesDir, file), { outDir });
    modules.set(manifest.name, await compileWasmKernel(await readFile(wasmPath)));
  }
  for (const lang of nativeLangs) {
    for (const name of NATIVE[lang].names) {
      const { wasmPath, manifest } = await buildKernel(NATIVE[lang].source(name), { outDir: path.join(outDir, lang) });
      expect(manifest.compiler.name).toBe(lang === "c" ? "clang" : "rustc");
      modules.set(`${lang}:${name}`, await compileWasmKernel(await readFile(wasmPath)));
    }
  }
}, 180_000);

afterAll(async () => {
  if (outDir) await rm(outDir, { recursive: true, force: true });
});

describe("example kernels", () => {
  it("every example source has a JS reference and vice versa", async () => {
    const sources = (await readdir(examplesDir)).filter((f) => f.endsWith(".ts")).map((f) => f.slice(0, -3));
    expect(sources.sort()).toEqual(Object.keys(exampleKernels).sort());
    for (const [key, k] of Object.entries(exampleKernels)) expect(k.name).toBe(key);
  });

  for (const name of Object.keys(exampleKernels)) for (const lang of langsOf(name)) {
    it(`${titled(name, lang)}: default job (16 tasks) matches the reference and summarizes`, () => {
      const kernel = exampleKernels[name]!;
      const t0 = performance.now();
      const inputs = kernel.makeTasks({ tasks: 16, seed: 3 });
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(inputs).toHaveLength(16);
      const outputs = inputs.slice(0, 4).map((input) => expectMatches(name, input, lang));
      // The reference's own output passes its check, and summaries are one line.
      for (const input of inputs.slice(0, 2)) expect(kernel.check(input, kernel.reference(input)).ok).toBe(true);
      const line = kernel.summarize(inputs.slice(0, 4), outputs);
      expect(line).not.toContain("\n");
      expect(line.length).toBeGreaterThan(10);
    });

    it(`${titled(name, lang)}: odd sizes and uneven splits`, () => {
      const kernel = exampleKernels[name]!;
      const size = name === "gemm" ? 37 : name === "mandelbrot" ? 45 : 1001;
      for (const input of kernel.makeTasks({ tasks: 3, size, seed: 11 })) expectMatches(name, input, lang);
      // More tasks than rows/items: empty tasks are valid too.
      for (const input of kernel.makeTasks({ tasks: 5, size: 3, seed: 2 })) expectMatches(name, input, lang);
    });
  }

  const GEMM_SHAPES = [[1, 1, 1], [4, 8, 1], [5, 9, 3], [67, 13, 300], [3, 70, 257], [64, 64, 256], [130, 17, 520]] as const;
  const gemmShape = ([m, n, k]: readonly [number, number, number]) =>
    gemmInput(m, n, k, fillUniform(new Float32Array(m * k), m * 1000 + k), fillUniform(new Float32Array(k * n), n * 7 + 1));

  for (const lang of langsOf("gemm")) {
    it(`${titled("gemm", lang)}: non-square, non-multiple-of-block shapes within the reference's bound`, () => {
      for (const shape of GEMM_SHAPES) {
        const out = expectMatches("gemm", gemmShape(shape), lang);
        expect(out.byteLength).toBe(shape[0] * shape[1] * 4);
      }
    });

    it(`${titled("gemm", lang)}: a wrong answer fails the check`, () => {
      const input = exampleKernels.gemm!.makeTasks({ tasks: 1, size: 16 })[0]!;
      const out = run("gemm", input, lang);
      new DataView(out.buffer).setFloat32(40, 1234, true);
      const result = exampleKernels.gemm!.check(input, out);
      expect(result.ok).toBe(false);
      expect(result.detail).toMatch(/C\[0\]\[10\]/);
    });

    it(`${titled("gemm", lang)}: B as shared input 0 gives the same C as B in every task`, () => {
      const copied = exampleKernels.gemm!.makeTasks({ tasks: 3, size: 70, seed: 5 });
      const { inputs, shared } = exampleKernels.gemm!.shared!.makeTasks({ tasks: 3, size: 70, seed: 5 });
      const b = shared.map((s) => s.data);
      inputs.forEach((input, t) => expect(run("gemm", input, lang, b)).toEqual(run("gemm", copied[t]!, lang)));
      // Flags say B is shared but the job has none: the task fails, it never reads past its input.
      expect(() => run("gemm", inputs[0]!, lang)).toThrow();
      expect(WebAssembly.Module.imports(moduleOf("gemm", lang)).map((i) => i.name)).toContain("shared_input");
    });
  }

  // Same blocking, same order of additions: C and Rust give the AssemblyScript kernel's bits.
  for (const lang of nativeLangs) {
    it(`gemm (${lang}): bit-identical to the AssemblyScript gemm`, () => {
      for (const shape of GEMM_SHAPES) expect(run("gemm", gemmShape(shape), lang)).toEqual(run("gemm", gemmShape(shape)));
    });

    it(`saxpy (${lang}): a kernel that reads no shared input does not import them (ABI version 2)`, () => {
      const names = WebAssembly.Module.imports(moduleOf("saxpy", lang)).map((i) => i.name);
      expect(names).not.toContain("shared_input");
      expect(names).not.toContain("shared_input_len");
    });
  }

  for (const lang of langsOf("saxpy")) {
    it(`${titled("saxpy", lang)}: tails that are not a multiple of 4`, () => {
      for (const n of [0, 1, 3, 5, 8, 1023]) {
        const x = fillUniform(new Float32Array(n), n + 1);
        const y = fillUniform(new Float32Array(n), n + 2);
        expectMatches("saxpy", saxpyInput(-0.75, x, y), lang);
      }
    });
  }

  for (const lang of langsOf("mandelbrot")) {
    it(`${titled("mandelbrot", lang)}: exact counts on zoomed tiles, widths not a multiple of 4`, () => {
      for (const [w, h] of [[1, 1], [3, 2], [7, 5], [64, 9]] as const) {
        expectMatches(
          "mandelbrot",
          mandelbrotInput({ x0: -0.75, y0: 0.1, dx: 0.0007, dy: 0.0009, width: w, height: h, maxIter: 1000 }),
          lang,
        );
      }
      const full = run("mandelbrot", mandelbrotInput({ x0: -2, y0: -1.5, dx: 3 / 32, dy: 3 / 32, width: 32, height: 32, maxIter: 100 }), lang);
      const counts = new Uint32Array(full.buffer);
      expect(counts[16 * 32 + 21]).toBe(100); // c = -0.03 + 0i is in the set
      expect(counts[0]).toBe(1); // c = -2 - 1.5i escapes after one step
    });
  }

  for (const lang of langsOf("montecarlo_pi")) {
    it(`${titled("montecarlo_pi", lang)}: exact hit counts, deterministic, and close to pi`, () => {
      for (const [seed, samples] of [[0n, 0], [1n, 1], [42n, 1000], [0xffffffffffffffffn, 12345]] as const) {
        const out = expectMatches("montecarlo_pi", montecarloInput(seed, samples), lang);
        expect(new DataView(out.buffer).getBigUint64(0, true)).toBe(BigInt(countHits(seed, samples)));
      }
      const input = montecarloInput(2024n, 1_000_000);
      const a = run("montecarlo_pi", input, lang);
      const b = run("montecarlo_pi", input, lang);
      expect(a).toEqual(b);
      const pi = (4 * Number(new DataView(a.buffer).getBigUint64(0, true))) / 1_000_000;
      expect(Math.abs(pi - Math.PI)).toBeLessThan(0.01);
      const line = exampleKernels.montecarlo_pi!.summarize([input], [a]);
      expect(line).toMatch(/^pi ≈ 3\.1\d+ from 1,000,000 samples/);
    });
  }

  for (const lang of langsOf("histogram")) {
    it(`${titled("histogram", lang)}: every shift and a short tail`, () => {
      const values = new Uint32Array(1027);
      for (let i = 0; i < values.length; i++) values[i] = (i * 2654435761) >>> 0;
      for (const shift of [0, 5, 24, 31]) {
        const out = expectMatches("histogram", histogramInput(values, shift), lang);
        expect(new Uint32Array(out.buffer).reduce((s, c) => s + c, 0)).toBe(values.length);
      }
    });
  }

  it("makeTasks refuses a non-positive task count or size", () => {
    for (const k of Object.values(exampleKernels)) {
      expect(() => k.makeTasks({ tasks: 0 })).toThrow(/tasks must be a positive integer/);
      expect(() => k.makeTasks({ tasks: 2, size: 0 })).toThrow(/size must be a positive integer/);
    }
  });

  it("a truncated input traps that task with the kernel's message", () => {
    const input = exampleKernels.saxpy!.makeTasks({ tasks: 1, size: 100 })[0]!;
    expect(() => run("saxpy", input.subarray(0, 100))).toThrow(/saxpy: input shorter than its header says/);
    const g = exampleKernels.gemm!.makeTasks({ tasks: 1, size: 8 })[0]!;
    expect(() => run("gemm", g.subarray(0, 40))).toThrow(/gemm: input shorter/);
  });

  for (const lang of nativeLangs) {
    it(`saxpy, gemm, mandelbrot, montecarlo_pi (${lang}): a truncated input traps that task, naming the function`, () => {
      const input = exampleKernels.saxpy!.makeTasks({ tasks: 1, size: 100 })[0]!;
      // Both checks' traps may be merged into one by LLVM (no single source line), so only the function is certain.
      expect(() => run("saxpy", input.subarray(0, 100), lang)).toThrow(/^kernel trapped: unreachable .*in distx_run$/);
      // The other examples check their header the same way (none reads past its input).
      const g = exampleKernels.gemm!.makeTasks({ tasks: 1, size: 8 })[0]!;
      expect(() => run("gemm", g.subarray(0, 40), lang)).toThrow(/^kernel trapped: unreachable/);
      expect(() => run("mandelbrot", exampleKernels.mandelbrot!.makeTasks({ tasks: 1, size: 8 })[0]!.subarray(0, 47), lang)).toThrow(/^kernel trapped/);
      expect(() => run("montecarlo_pi", montecarloInput(1n, 10).subarray(0, 15), lang)).toThrow(/^kernel trapped/);
    });
  }
});
