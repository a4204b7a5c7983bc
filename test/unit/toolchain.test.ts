// The kernel toolchain: buildKernel's outputs and manifest, its compile-error reporting,
// manifest validation, and the ABI checks that refuse modules the agent could not cap.
import { createHash } from "node:crypto";
import { access, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import asc from "assemblyscript/asc";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileWasmKernel, KernelAbiError } from "../../common/kernel-abi.js";
import { buildKernel, KernelBuildError } from "../../kernels/toolchain/build.js";
import { sdkSearchPath } from "../../kernels/toolchain/sdk-path.js";
import { KernelManifestError, KernelManifestSchema, parseManifest, readManifest } from "../../kernels/toolchain/manifest.js";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const saxpySource = path.join(repo, "kernels/assembly/examples/saxpy.ts");
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "distx-toolchain-"));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

/** Compiles with asc directly, with whatever flags, returning the bytes (for ABI-violation tests). */
async function ascBytes(source: string, flags: string[]): Promise<Uint8Array> {
  let binary: Uint8Array | undefined;
  const stderr = asc.createMemoryStream();
  // --path: where "distributex/kernel" (the SDK) resolves, as buildKernel gives it.
  const { error } = await asc.main([source, "--outFile", "out.wasm", "--noColors", "--path", sdkSearchPath(), ...flags], {
    stderr,
    writeFile: (_name, contents) => {
      if (typeof contents !== "string") binary = contents;
    },
  });
  if (error || !binary) throw new Error(`asc failed: ${stderr.toString()}`);
  return binary;
}

describe("buildKernel", () => {
  it("writes <name>.wasm and <name>.manifest.json whose fields describe the bytes", async () => {
    const outDir = path.join(dir, "out");
    const before = Date.now();
    const { wasmPath, manifestPath, manifest } = await buildKernel(saxpySource, { outDir });
    expect(wasmPath).toBe(path.join(outDir, "saxpy.wasm"));
    expect(manifestPath).toBe(path.join(outDir, "saxpy.manifest.json"));
    const bytes = await readFile(wasmPath);
    expect(manifest).toMatchObject({
      name: "saxpy",
      kind: "wasm",
      entry: "distx_run",
      abi: "distx-abi-1",
      sizeBytes: bytes.byteLength,
      sha256: createHash("sha256").update(bytes).digest("hex"),
      compiler: { name: "assemblyscript", version: asc.version },
    });
    expect(manifest.compiler.flags).toEqual(expect.arrayContaining(["-O3", "--importMemory", "--runtime", "stub"]));
    expect(path.resolve(outDir, manifest.source)).toBe(saxpySource);
    const builtAt = Date.parse(manifest.builtAt);
    expect(builtAt).toBeGreaterThanOrEqual(before - 1000);
    expect(builtAt).toBeLessThanOrEqual(Date.now() + 1000);
    // What is on disk is what was returned, and it validates.
    expect(await readManifest(manifestPath)).toEqual(manifest);
    expect(KernelManifestSchema.safeParse(JSON.parse(await readFile(manifestPath, "utf8"))).success).toBe(true);
    await expect(compileWasmKernel(bytes)).resolves.toBeInstanceOf(WebAssembly.Module);
  });

  it("optimize: false builds an unoptimized (-O0) kernel that still passes the ABI", async () => {
    const { manifest, wasmPath } = await buildKernel(saxpySource, { outDir: path.join(dir, "debug"), optimize: false });
    expect(manifest.compiler.flags).toContain("-O0");
    await expect(compileWasmKernel(await readFile(wasmPath))).resolves.toBeDefined();
  });

  it("a syntax error fails the build with asc's diagnostic as file:line:col, writing nothing", async () => {
    const file = path.join(dir, "broken.ts");
    await writeFile(file, "export function distx_run(input: usize, len: i32): i32 {\n  return len +;\n}\n");
    const outDir = path.join(dir, "broken-out");
    const err = await buildKernel(file, { outDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KernelBuildError);
    const message = (err as Error).message;
    expect(message).toMatch(/broken\.ts:2:\d+: ERROR TS1109: Expression expected/);
    expect(message).toContain("return len +;"); // asc's code frame is kept too
    expect((err as KernelBuildError).diagnostics.length).toBeGreaterThan(0);
    expect(await exists(path.join(outDir, "broken.wasm"))).toBe(false);
    expect(await exists(path.join(outDir, "broken.manifest.json"))).toBe(false);
  });

  it("a type error is reported with its line", async () => {
    const file = path.join(dir, "typeerr.ts");
    await writeFile(file, "// line 1\nexport function distx_run(input: usize, len: i32): i32 {\n  const s: i32 = \"text\";\n  return s;\n}\n");
    await expect(buildKernel(file, { outDir: dir })).rejects.toThrow(/typeerr\.ts:3:\d+: ERROR TS2322/);
  });

  it("a kernel that compiles but misses the ABI exports is refused", async () => {
    const file = path.join(dir, "noabi.ts");
    await writeFile(file, "export function distx_run(input: usize, len: i32): i32 {\n  return load<i32>(input) + len;\n}\n");
    await expect(buildKernel(file, { outDir: dir })).rejects.toThrow(/breaks distx-abi-1: .*distx_abi_version/);
    expect(await exists(path.join(dir, "noabi.wasm"))).toBe(false);
  });

  it("a missing source file is an error that names it", async () => {
    await expect(buildKernel(path.join(dir, "nope.ts"), { outDir: dir })).rejects.toThrow(/nope\.ts/);
  });
});

describe("kernel manifest", () => {
  const good = {
    name: "gemm",
    kind: "wasm",
    entry: "distx_run",
    abi: "distx-abi-1",
    sha256: "a".repeat(64),
    sizeBytes: 2048,
    source: "../../kernels/assembly/examples/gemm.ts",
    compiler: { name: "assemblyscript", version: "0.28.20", flags: ["-O3"] },
    builtAt: "2025-01-01T00:00:00.000Z",
  };

  it("accepts a valid manifest", () => {
    expect(parseManifest(good)).toEqual(good);
  });

  it.each([
    ["sha256", { sha256: "not-hex" }],
    ["kind", { kind: "gpu" }],
    ["abi", { abi: "distx-abi-2" }],
    ["sizeBytes", { sizeBytes: -1 }],
    ["builtAt", { builtAt: "yesterday" }],
    ["compiler.version", { compiler: { name: "assemblyscript", flags: [] } }],
    ["compiler.flags", { compiler: { name: "assemblyscript", version: "1", flags: "-O3" } }],
  ])("names the bad field %s", (field, patch) => {
    let err: unknown;
    try {
      parseManifest({ ...good, ...patch });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KernelManifestError);
    expect((err as KernelManifestError).fields).toContain(field);
    expect((err as Error).message).toContain(`${field}:`);
  });

  it("readManifest names the file, and reports missing fields and bad JSON", async () => {
    const p = path.join(dir, "bad.manifest.json");
    const { name: _drop, ...noName } = good;
    await writeFile(p, JSON.stringify(noName));
    await expect(readManifest(p)).rejects.toThrow(/bad\.manifest\.json is invalid: name:/);
    await writeFile(p, "{ not json");
    await expect(readManifest(p)).rejects.toThrow(/is not JSON/);
    await expect(readManifest(path.join(dir, "missing.json"))).rejects.toThrow(/cannot read kernel manifest/);
  });
});

describe("ABI checks (compileWasmKernel)", () => {
  it("refuses a module that defines its own memory (built without --importMemory)", async () => {
    const bytes = await ascBytes(saxpySource, ["-O3", "--runtime", "stub", "--enable", "simd"]);
    const err = await compileWasmKernel(bytes).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KernelAbiError);
    expect((err as Error).message).toMatch(/must import its memory as env\.memory \(asc --importMemory\)/);
  });

  it("refuses a module that imports anything beyond env.memory/abort/seed", async () => {
    const file = path.join(dir, "sneaky.ts");
    await writeFile(
      file,
      [
        "export function distx_abi_version(): i32 { return 1; }",
        "export function distx_alloc(len: i32): usize { return heap.alloc(<usize>len); }",
        "export function distx_output_ptr(): usize { return 0; }",
        "@external(\"env\", \"readFile\") declare function readFile(p: i32): i32;",
        "export function distx_run(input: usize, len: i32): i32 { return readFile(len); }",
      ].join("\n"),
    );
    const bytes = await ascBytes(file, ["--runtime", "stub", "--importMemory"]);
    await expect(compileWasmKernel(bytes)).rejects.toThrow(/imports env\.readFile \(function\); distx-abi-1 allows only/);
  });

  it("refuses an ABI version the agents do not speak, and a version that is not a constant, without running the module", async () => {
    const kernel = async (name: string, versionBody: string) => {
      const file = path.join(dir, `${name}.ts`);
      await writeFile(
        file,
        [
          'export { distx_alloc, distx_output_ptr } from "distributex/kernel";',
          "let calls: i32 = 0;",
          `export function distx_abi_version(): i32 { ${versionBody} }`,
          "export function distx_run(input: usize, len: i32): i32 { return 0; }",
        ].join("\n"),
      );
      return ascBytes(file, ["-O3", "--runtime", "stub", "--importMemory"]);
    };
    await expect(compileWasmKernel(await kernel("v3", "return 3;"))).rejects.toThrow(/kernel speaks ABI version 3 \(its distx_abi_version\(\)\); agents speak 1 and 2/);
    await expect(compileWasmKernel(await kernel("vdyn", "calls++; return calls > 1 ? 2 : 1;"))).rejects.toThrow(/distx_abi_version\(\) must return a constant/);
    // Both versions the agents speak pass, optimised or not.
    for (const v of [1, 2]) await compileWasmKernel(await kernel(`v${v}`, `return ${v};`));
    const file = path.join(dir, "v2dbg.ts");
    await writeFile(file, 'export { distx_abi_version, distx_alloc, distx_output_ptr } from "distributex/kernel";\nexport function distx_run(input: usize, len: i32): i32 { return 0; }\n');
    await compileWasmKernel(await ascBytes(file, ["-O0", "--runtime", "stub", "--importMemory"]));
  });

  it("refuses bytes that are not WebAssembly", async () => {
    await expect(compileWasmKernel(new TextEncoder().encode("#!/bin/sh\necho hi\n"))).rejects.toThrow(/magic number/);
  });
});
