// A trap names the author's file, line and function: `distx kernel build` puts a compact source
// map into the module's "distx.srcmap" section and the agent maps the trap's wasm frames through
// it (common/kernel-srcmap.ts). AssemblyScript always; C and Rust when Debian's clang/rustc for
// wasm32 are installed (always in CI: scripts/setup/50-kernel-langs.sh). A malformed or oversized
// map is ignored: the trap is still TRAP, only without a place.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileWasmKernel } from "../../common/kernel-abi.js";
import { decodeSrcmap, MAX_SRCMAP_BYTES, SRCMAP_SECTION } from "../../common/kernel-srcmap.js";
import { appendCustomSection } from "../../common/wasm-custom-section.js";
import { repoRoot } from "../../common/paths.js";
import { KernelRunError, runWasmKernel } from "../../agent/wasm/run-kernel.js";
import { buildKernel } from "../../kernels/toolchain/build.js";
import { haveToolchain } from "../../kernels/toolchain/native.js";

const fixtures = path.join(repoRoot(), "test/fixtures/kernels");
// The C and Rust cases need Debian's clang/lld and rustc with the wasm32 standard library, which
// scripts/setup/50-kernel-langs.sh installs. CI sets DISTX_KERNEL_LANG_TESTS=require there, so in CI
// they always run (a missing tool fails them); only a developer machine without those packages skips
// them, as it would skip a test it cannot build the input for.
const require = process.env.DISTX_KERNEL_LANG_TESTS === "require";
let outDir: string;

beforeAll(async () => {
  outDir = await mkdtemp(path.join(os.tmpdir(), "distx-traps-"));
});
afterAll(async () => {
  if (outDir) await rm(outDir, { recursive: true, force: true });
});

async function build(source: string): Promise<Uint8Array> {
  const { wasmPath } = await buildKernel(path.join(fixtures, source), { outDir });
  return new Uint8Array(await readFile(wasmPath));
}

async function trapOf(bytes: Uint8Array): Promise<KernelRunError> {
  const module = await compileWasmKernel(bytes);
  try {
    runWasmKernel(module, new Uint8Array(4), { memoryLimitBytes: 1 << 24 });
  } catch (err) {
    if (err instanceof KernelRunError) return err;
    throw err;
  }
  throw new Error("the kernel did not trap");
}

describe("trap locations", () => {
  it("AssemblyScript: names the file, line and function", async () => {
    const err = await trapOf(await build("trap_line.ts"));
    expect(err.code).toBe("TRAP");
    expect(err.message).toMatch(/^kernel trapped: divide by zero at trap_line\.ts:8:\d+ in \S*distx_run$/);
  });

  it.skipIf(!require && !haveToolchain("c"))("C: names the file, line and function", async () => {
    const err = await trapOf(await build("trap_line.c"));
    expect(err.code).toBe("TRAP");
    expect(err.message).toMatch(/^kernel trapped: divide by zero at trap_line\.c:8:\d+ in distx_run$/);
  }, 60_000);

  it.skipIf(!require && !haveToolchain("rust"))("Rust: names the author's line, not the inlined core::arch code", async () => {
    const err = await trapOf(await build("rust_trap"));
    expect(err.code).toBe("TRAP");
    expect(err.message).toMatch(/^kernel trapped: unreachable at src\/lib\.rs:11:\d+ in distx_run$/);
  }, 120_000);

  it("a malformed or oversized map is ignored: still TRAP, no place, no crash", async () => {
    const built = await build("trap_line.ts");
    const sections = WebAssembly.Module.customSections(await compileWasmKernel(built), SRCMAP_SECTION);
    expect(sections).toHaveLength(1);
    const enc = (s: string) => new TextEncoder().encode(s);
    // The last distx.srcmap section wins, so each of these replaces the good one.
    for (const bad of [
      enc("{not json"),
      enc('{"v":1,"files":["a.ts"],"rows":[10,5,1,1]}'), // file index out of range
      enc('{"v":1,"files":["a.ts"],"rows":[10,0,1,1,5,0,2,1]}'), // rows not sorted
      enc('{"v":1,"files":["a.ts"],"rows":[10,0,1]}'), // not quadruples
      enc(`{"v":1,"files":["a.ts"],"rows":[0,0,1,1],"pad":"${"x".repeat(MAX_SRCMAP_BYTES)}"}`), // too big to parse
      new Uint8Array([0xff, 0xfe, 0x00]), // not UTF-8
    ]) {
      const err = await trapOf(appendCustomSection(built, SRCMAP_SECTION, bad));
      expect(err.code).toBe("TRAP");
      expect(err.message).toMatch(/^kernel trapped: divide by zero( in \S+)?$/);
    }
  });

  it("decodeSrcmap checks every field", () => {
    const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    expect(decodeSrcmap(enc({ v: 1, files: ["a.ts"], rows: [1, 0, 2, 3, 9, 0, 4, 1] }))).toEqual({ files: ["a.ts"], rows: [1, 0, 2, 3, 9, 0, 4, 1] });
    expect(decodeSrcmap(enc({ v: 2, files: [], rows: [] }))).toBeUndefined();
    expect(decodeSrcmap(enc({ v: 1, files: [7], rows: [] }))).toBeUndefined();
    expect(decodeSrcmap(enc({ v: 1, files: ["a"], rows: [-1, 0, 1, 1] }))).toBeUndefined();
    expect(decodeSrcmap(enc({ v: 1, files: ["a"], rows: [1.5, 0, 1, 1] }))).toBeUndefined();
    expect(decodeSrcmap(new Uint8Array(0))).toBeUndefined();
  });
});
