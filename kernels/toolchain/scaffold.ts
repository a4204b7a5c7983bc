// `distx kernel init NAME`: a kernel project that builds and tests with `npm test` as written.
// The kernel imports the SDK from "distributex/kernel" (the installed package; nothing copied),
// reference.ts says what it must output and how to build inputs for `distx kernel test`, and
// test/run.test.mjs checks one hand-written input through `distx kernel run`.
import { existsSync } from "node:fs";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import path from "node:path";

/** A kernel name: what the .wasm and the manifest are called. */
export const KERNEL_NAME = /^[a-z][a-z0-9_]{0,63}$/;

export async function scaffoldKernel(name: string, dir: string, sdkVersion: string): Promise<string[]> {
  if (!KERNEL_NAME.test(name)) throw new RangeError(`kernel name ${JSON.stringify(name)}: use lower-case letters, digits and _, starting with a letter (at most 64)`);
  if (existsSync(dir) && (await readdir(dir)).length > 0) throw new RangeError(`${dir} exists and is not empty; give an empty or new folder`);
  const files: Record<string, string> = {
    "package.json": `${JSON.stringify(
      {
        name: name.replace(/_/g, "-"),
        version: "0.1.0",
        private: true,
        type: "module",
        scripts: {
          build: `distx kernel build assembly/${name}.ts --out-dir build`,
          test: `npm run build && distx kernel test build/${name}.wasm --reference reference.ts && node --test test/`,
        },
        devDependencies: { distributex: `^${sdkVersion}`, typescript: "^5.4.0 || ^6.0.0" },
      },
      null,
      2,
    )}\n`,
    [`assembly/${name}.ts`]: `// ${name}: out[i] = 2 * x[i] + 1 over float32.
// Input:  u32 n, f32 x[n]   (little-endian, packed)
// Output: f32 out[n]
// Each element is one f32 multiply and one f32 add, rounded after each (no FMA), exactly as the
// reference's Math.fround(Math.fround(2 * x) + 1).
export { distx_abi_version, distx_alloc, distx_output_ptr } from "distributex/kernel";
import { output } from "distributex/kernel";

export function distx_run(input: usize, len: i32): i32 {
  if (len < 4) abort("${name}: input shorter than its 4-byte header");
  const n = <i32>load<u32>(input);
  if (<u64>len < 4 + <u64>n * 4) abort("${name}: input shorter than n floats");
  const out = output(n * 4);
  for (let i = 0; i < n; i++) {
    const x = load<f32>(input + 4 + (<usize>i << 2));
    store<f32>(out + (<usize>i << 2), <f32>2 * x + <f32>1);
  }
  return n * 4;
}
`,
    "reference.ts": `// What ${name} must output, and how \`distx kernel test\` builds inputs for it.
// \`distx kernel test build/${name}.wasm --reference reference.ts\` runs both on generated
// inputs (every size in \`sizes\`, random and edge values), shrinks a failing input to a small one
// and reports the first element that differs.

/** Draws the generator hands to makeInput (each value comes from a recorded choice, so failures shrink). */
export interface Draw {
  u32(): number;
  int(lo: number, hi: number): number;
  byte(): number;
  f32(): number;
  f64(): number;
}

/** The expected output for one input (seed: the task's env.seed, unused here). */
export function reference(input: Uint8Array, _seed: number): Uint8Array {
  const view = new DataView(input.buffer, input.byteOffset, input.byteLength);
  const n = view.getUint32(0, true);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.fround(Math.fround(2 * view.getFloat32(4 + 4 * i, true)) + 1);
  return new Uint8Array(out.buffer);
}

/** An input of \`size\` elements. */
export function makeInput(size: number, draw: Draw): Uint8Array {
  const bytes = new Uint8Array(4 + 4 * size);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, size, true);
  for (let i = 0; i < size; i++) view.setFloat32(4 + 4 * i, draw.f32(), true);
  return bytes;
}

/** Outputs are float32s; this kernel rounds exactly as the reference, so they must be equal. */
export const compare = { type: "f32", absTol: 0, relTol: 0 };

export const sizes = [0, 1, 2, 3, 4, 5, 15, 16, 17, 100, 1000, 65536];
`,
    "test/run.test.mjs": `// One hand-written input through the agent's sandbox (\`distx kernel run\`), checked exactly.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";

test("${name} doubles and adds one", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "${name}-"));
  const input = Buffer.alloc(4 + 3 * 4);
  input.writeUInt32LE(3, 0);
  [1.5, -2, 0].forEach((x, i) => input.writeFloatLE(x, 4 + 4 * i));
  writeFileSync(path.join(dir, "in.bin"), input);
  const out = path.join(dir, "out.bin");
  execFileSync("distx", ["kernel", "run", "build/${name}.wasm", "--input", path.join(dir, "in.bin"), "--out", out], { stdio: "inherit" });
  const bytes = readFileSync(out);
  assert.deepEqual(Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4)), [4, -3, 1]);
});
`,
    ".gitignore": "node_modules/\nbuild/\n",
    "README.md": `# ${name}

A DistributeX WebAssembly kernel (AssemblyScript). \`npm install\`, then:

- \`npm test\`: builds \`build/${name}.wasm\`, runs it against \`reference.ts\` over generated inputs
  (\`distx kernel test\`) and runs \`test/\`.
- \`npx distx kernel run build/${name}.wasm --random 64 --format f32\`: one run in the agent's
  sandbox (same memory cap, timeout and compiler tier), with its run time and peak memory.
- \`npx distx kernel register build/${name}.wasm\`, then \`npx distx submit -k build/${name}.wasm --input FILE\`.

The contract (memory, scratch space, floats, splitting work into tasks): the DistributeX
kernels/README.md, shipped in node_modules/distributex/kernels/README.md.
`,
  };
  const written: string[] = [];
  for (const [rel, text] of Object.entries(files)) {
    const file = path.join(dir, rel);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, text);
    written.push(rel);
  }
  return written;
}
