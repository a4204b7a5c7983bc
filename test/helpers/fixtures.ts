// Builds test fixture kernels (and the examples) once per test file into a temp folder.
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { readFile } from "node:fs/promises";
import { repoRoot } from "../../common/paths.js";
import { buildKernel } from "../../kernels/toolchain/build.js";

const outDir = mkdtempSync(path.join(os.tmpdir(), "distx-fixtures-"));

export async function fixtureKernel(name: "trap" | "trap_line" | "trap_html" | "spin" | "hog" | "echo" | "shared_echo" | "abi_v1" | "grow_direct" | "log"): Promise<Uint8Array> {
  const { wasmPath } = await buildKernel(path.join(repoRoot(), "test", "fixtures", "kernels", `${name}.ts`), { outDir });
  return readFile(wasmPath);
}

export const exampleWasm = (name: string): Promise<Buffer> => readFile(path.join(repoRoot(), "build", "kernels", `${name}.wasm`));
