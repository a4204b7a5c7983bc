// `distx kernel init|run|test`: from an empty folder to a tested kernel, without a cluster.
// `run` and `test` execute the kernel in the agent's own sandbox (kernels/toolchain/local-run.ts:
// the agent's worker pool, caps and compiler tier), so what passes here runs the same on an agent.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Command } from "commander";
import { KernelAbiError } from "../../common/kernel-abi.js";
import { repoRoot } from "../../common/paths.js";
import { DEFAULT_SIZES, testKernel } from "../../kernels/toolchain/kernel-test.js";
import { DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_MS, LocalSandbox } from "../../kernels/toolchain/local-run.js";
import { loadReference, ReferenceLoadError } from "../../kernels/toolchain/reference.js";
import { scaffoldKernel } from "../../kernels/toolchain/scaffold.js";
import { fail, parseIntOption, UsageError } from "../util.js";

const FORMATS = ["hex", "f32", "f64", "u32", "i32"] as const;
type Format = (typeof FORMATS)[number];

/** The output as text: hex, or little-endian numbers one per line. */
export function formatOutput(bytes: Uint8Array, format: Format): string {
  if (format === "hex") return Buffer.from(bytes).toString("hex").replace(/(.{64})/g, "$1\n").trimEnd();
  const width = format === "f64" ? 8 : 4;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: string[] = [];
  for (let o = 0; o + width <= bytes.byteLength; o += width) {
    const v = format === "f32" ? view.getFloat32(o, true) : format === "f64" ? view.getFloat64(o, true) : format === "u32" ? view.getUint32(o, true) : view.getInt32(o, true);
    out.push(Object.is(v, -0) ? "-0" : String(v));
  }
  if (bytes.byteLength % width) out.push(`(${bytes.byteLength % width} trailing bytes: ${Buffer.from(bytes.subarray(bytes.byteLength - (bytes.byteLength % width))).toString("hex")})`);
  return out.join("\n");
}

/** xorshift32 bytes from a seed: `--random N --seed S` gives the same input every time. */
function seededBytes(n: number, seed: number): Uint8Array {
  let x = seed >>> 0 || 0x9e3779b9;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const mb = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(2)} MiB`;

async function openSandbox(wasm: string, memoryMb: number, timeoutMs: number): Promise<LocalSandbox> {
  if (!existsSync(wasm)) throw new UsageError(`no such file: ${wasm}`);
  try {
    return await LocalSandbox.open(wasm, { memoryMb, timeoutMs });
  } catch (err) {
    if (err instanceof KernelAbiError) throw new UsageError(`${wasm}: ${err.message}`);
    if (err instanceof RangeError) throw new UsageError(err.message);
    throw err;
  }
}

export function registerKernelDevCommands(program: Command): void {
  const kernel = program.commands.find((c) => c.name() === "kernel") ?? program.command("kernel");

  kernel
    .command("init")
    .description("scaffold a kernel project: the kernel, a reference, a test, and a package.json whose `npm test` builds and tests it")
    .argument("<name>", "the kernel's name (lower-case letters, digits, _)")
    .option("-d, --dir <dir>", "where to create it (default: ./<name>)")
    .action(async (name: string, opts: { dir?: string }) => {
      try {
        const dir = path.resolve(opts.dir ?? name);
        const version = (JSON.parse(readFileSync(path.join(repoRoot(), "package.json"), "utf8")) as { version: string }).version;
        const files = await scaffoldKernel(name, dir, version).catch((err: unknown) => {
          throw err instanceof RangeError ? new UsageError(err.message) : err;
        });
        console.log(`created ${path.relative(process.cwd(), dir) || "."}: ${files.join(", ")}`);
        console.log(`next: cd ${path.relative(process.cwd(), dir) || "."} && npm install && npm test`);
      } catch (err) {
        fail(err);
      }
    });

  kernel
    .command("run")
    .description("run a kernel on one input on this machine, in the agent's sandbox (same memory cap, timeout and tier); prints the output, run time and peak memory")
    .argument("<wasm>", "a built .wasm kernel")
    .option("-i, --input <file>", "the task's input bytes")
    .option("--random <bytes>", "a random input of this many bytes (with --seed: the same bytes each time)", parseIntOption("--random"))
    .option("--seed <n>", "the task's env.seed, and the seed of --random", parseIntOption("--seed"), 1)
    .option("--memory-mb <mib>", "the task's memory cap", parseIntOption("--memory-mb"), DEFAULT_MEMORY_MB)
    .option("--timeout-ms <ms>", "the task's time limit", parseIntOption("--timeout-ms"), DEFAULT_TIMEOUT_MS)
    .option("-f, --format <fmt>", `how to print the output: ${FORMATS.join(", ")}`, "hex")
    .option("-o, --out <file>", "write the output bytes to this file instead of printing them")
    .action(async (wasm: string, opts: { input?: string; random?: number; seed: number; memoryMb: number; timeoutMs: number; format: string; out?: string }) => {
      try {
        if (!FORMATS.includes(opts.format as Format)) throw new UsageError(`--format must be one of ${FORMATS.join(", ")}, got ${JSON.stringify(opts.format)}`);
        if ((opts.input === undefined) === (opts.random === undefined)) throw new UsageError("give one of --input FILE or --random N");
        if (opts.random !== undefined && opts.random < 0) throw new UsageError("--random must be ≥ 0");
        const input = opts.input !== undefined ? new Uint8Array(await readFile(opts.input)) : seededBytes(opts.random!, opts.seed);
        const sandbox = await openSandbox(wasm, opts.memoryMb, opts.timeoutMs);
        try {
          const r = await sandbox.run(input, opts.seed);
          // The kernel's log lines first, on stderr (stdout is the output alone); already sanitised.
          for (const line of r.logs ?? []) console.error(`log: ${line}`);
          if (!r.ok) {
            console.error(`distx: the kernel failed ${r.code}: ${r.message}`);
            process.exitCode = 1;
            return;
          }
          if (opts.out) await writeFile(opts.out, r.output);
          else console.log(formatOutput(r.output, opts.format as Format));
          // Facts about the run on stderr, so stdout is the output alone.
          console.error(`run: ${r.runMs.toFixed(3)} ms, peak memory ${mb(r.memoryBytes ?? 0)} of ${opts.memoryMb} MiB, input ${input.byteLength} B, output ${r.output.byteLength} B${opts.out ? ` -> ${opts.out}` : ""}`);
        } finally {
          await sandbox.close();
        }
      } catch (err) {
        fail(err);
      }
    });

  kernel
    .command("test")
    .description("run a kernel against a JS/TS reference over generated inputs (sizes, edge values, seeds); a failure is shrunk and its first differing element reported")
    .argument("<wasm>", "a built .wasm kernel")
    .requiredOption("-r, --reference <file>", "a .js/.mjs/.ts module exporting reference(input, seed), and optionally makeInput(size, draw), compare, sizes")
    .option("--seed <n>", "the generator's seed (a failure prints it, to run the same cases again)", parseIntOption("--seed"))
    .option("--runs <n>", "random cases per size", parseIntOption("--runs"), 3)
    .option("--sizes <list>", "comma-separated sizes (default: the reference's `sizes`, else 0..4096 in steps around powers of two)")
    .option("--memory-mb <mib>", "the task's memory cap", parseIntOption("--memory-mb"), DEFAULT_MEMORY_MB)
    .option("--timeout-ms <ms>", "the task's time limit", parseIntOption("--timeout-ms"), DEFAULT_TIMEOUT_MS)
    .action(async (wasm: string, opts: { reference: string; seed?: number; runs: number; sizes?: string; memoryMb: number; timeoutMs: number }) => {
      try {
        const ref = await loadReference(opts.reference).catch((err: unknown) => {
          throw err instanceof ReferenceLoadError ? new UsageError(err.message) : err;
        });
        const sizes = opts.sizes !== undefined ? opts.sizes.split(",").map((s) => parseIntOption("--sizes")(s.trim())) : (ref.sizes ?? DEFAULT_SIZES);
        if (sizes.length === 0 || sizes.some((s) => s < 0)) throw new UsageError("--sizes: give whole numbers ≥ 0");
        if (opts.runs < 1) throw new UsageError("--runs must be ≥ 1");
        const seed = opts.seed ?? randomBytes(4).readUInt32LE(0);
        const sandbox = await openSandbox(wasm, opts.memoryMb, opts.timeoutMs);
        try {
          const r = await testKernel(sandbox, ref, { seed, runsPerSize: opts.runs, sizes, shrinkBudget: 500 });
          if (r.ok) {
            console.log(`ok: ${r.cases} cases match the reference (sizes ${sizes.join(", ")}; ${opts.runs} per size; --seed ${seed})`);
            return;
          }
          const hex = Buffer.from(r.input).toString("hex");
          console.log(`FAIL after ${r.cases} case(s) (--seed ${seed}): size ${r.original.size}, shrunk in ${r.shrinkRuns} runs to size ${r.failing.size}, task seed ${r.failing.seed}`);
          console.log(`  ${r.mismatch.what}`);
          console.log(`  input (${r.input.byteLength} bytes): ${hex.length > 256 ? `${hex.slice(0, 256)}…` : hex}`);
          process.exitCode = 1;
        } finally {
          await sandbox.close();
        }
      } catch (err) {
        fail(err);
      }
    });
}
