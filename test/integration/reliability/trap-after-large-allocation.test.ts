// From defect 10 of the reliability issue: a kernel that trapped after a large allocation that
// succeeded was reported as MEMORY_LIMIT (the agent guessed from how far memory had grown). The
// failed grow's own trap is MEMORY_LIMIT; any other trap is a TRAP, however much memory is in use.
import { mkdtempSync } from "node:fs";
import { readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { compileWasmKernel } from "../../../common/kernel-abi.js";
import { repoRoot } from "../../../common/paths.js";
import { KernelRunError, runWasmKernel } from "../../../agent/wasm/run-kernel.js";
import { buildKernel } from "../../../kernels/toolchain/build.js";

const outDir = mkdtempSync(path.join(os.tmpdir(), "distx-trap-alloc-"));
const CAP = 16 << 20;

async function codeOf(fixture: string): Promise<string> {
  const { wasmPath } = await buildKernel(path.join(repoRoot(), "test", "fixtures", "kernels", `${fixture}.ts`), { outDir });
  const module = await compileWasmKernel(await readFile(wasmPath));
  try {
    runWasmKernel(module, new Uint8Array(8), { memoryLimitBytes: CAP });
  } catch (err) {
    expect(err).toBeInstanceOf(KernelRunError);
    return (err as KernelRunError).code;
  }
  return "no error";
}

describe("trap classification", () => {
  it("a trap after a large allocation that succeeded (12 of 16 MiB) is a TRAP", async () => {
    expect(await codeOf("alloc-then-trap")).toBe("TRAP");
  }, 60_000);

  it("an allocation that fails at the cap is MEMORY_LIMIT", async () => {
    expect(await codeOf("hog")).toBe("MEMORY_LIMIT");
  }, 60_000);

  it("a deliberate abort is a TRAP", async () => {
    expect(await codeOf("trap")).toBe("TRAP");
  }, 60_000);
});
