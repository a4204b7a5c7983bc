// Kernel logs (issue #16 item 6), the host side: env.log is an allowed import, its lines are
// capped per task in bytes and lines with a marker saying what was dropped, invalid UTF-8 is
// replaced and control/bidi characters escaped, bytes outside the memory trap (never a host
// crash), and a trap after logging keeps the lines. Through the agent's own worker pool too, as
// `distx kernel run` and an agent run it. The e2e side: test/e2e/kernel-logs.test.ts.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALLOWED_IMPORTS, compileWasmKernel } from "../../common/kernel-abi.js";
import { boundLogLines, KernelLog, MAX_KERNEL_LOG_BYTES, MAX_KERNEL_LOG_LINES, sanitizeLogLine } from "../../common/kernel-log.js";
import { repoRoot } from "../../common/paths.js";
import { KernelRunError, runWasmKernel } from "../../agent/wasm/run-kernel.js";
import { TaskFailure, WorkerPool } from "../../agent/pool/worker-pool.js";
import { buildKernel } from "../../kernels/toolchain/build.js";
import { haveToolchain } from "../../kernels/toolchain/native.js";
import { agentConfigSchema } from "../../common/config.js";
import { decodeUpdates, encodeUpdates, updateBytes } from "../../common/kafka-wire.js";
import type { TaskUpdateIn } from "../../common/types.js";

const enc = (s: string) => new TextEncoder().encode(s);
const requireLangs = process.env.DISTX_KERNEL_LANG_TESTS === "require";
let outDir: string;
let logKernel: WebAssembly.Module;

async function build(source: string): Promise<WebAssembly.Module> {
  const { wasmPath } = await buildKernel(path.join(repoRoot(), "test/fixtures/kernels", source), { outDir });
  return compileWasmKernel(new Uint8Array(await readFile(wasmPath)));
}

beforeAll(async () => {
  outDir = await mkdtemp(path.join(os.tmpdir(), "distx-klog-"));
  logKernel = await build("log.ts");
}, 60_000);
afterAll(async () => {
  if (outDir) await rm(outDir, { recursive: true, force: true });
});

function run(module: WebAssembly.Module, input: number[], log = new KernelLog()): { log: KernelLog; error?: KernelRunError } {
  try {
    runWasmKernel(module, new Uint8Array(input), { memoryLimitBytes: 1 << 24, log });
    return { log };
  } catch (err) {
    if (err instanceof KernelRunError) return { log, error: err };
    throw err;
  }
}

describe("sanitising", () => {
  it("escapes control, C1, bidi and separator characters as visible text, and replaces lone surrogates", () => {
    expect(sanitizeLogLine("a\x1b[2Jb\r\nc\td\x7f\u0085")).toBe("a\\x1b[2Jb\\x0d\\x0ac\\x09d\\x7f\\x85");
    expect(sanitizeLogLine("x\u202ey\u2066z\u2028w\ufeff")).toBe("x\\u202ey\\u2066z\\u2028w\\ufeff");
    expect(sanitizeLogLine("ok \ud800 é 😀 \udc00")).toBe("ok \ufffd é 😀 \ufffd");
    expect(sanitizeLogLine("plain text, 100% fine")).toBe("plain text, 100% fine");
  });

  it("replaces invalid UTF-8 instead of failing", () => {
    const log = new KernelLog();
    log.write(new Uint8Array([0x41, 0xff, 0xfe, 0x42, 0xc3]));
    expect(log.lines()).toEqual(["A\ufffd\ufffdB\ufffd"]);
  });
});

describe("the per-task cap", () => {
  it("keeps lines up to the byte cap, cuts the one that crosses it at a character boundary, then drops and counts", () => {
    const log = new KernelLog(20, 100);
    log.add("0123456789"); // 10
    log.add("abcdefgh€z"); // 12 bytes; 10 left: byte 10 is inside the 3-byte €, so the cut keeps 8
    log.add("dropped");
    const lines = log.lines();
    expect(lines[0]).toBe("0123456789");
    expect(lines[1]).toBe("abcdefgh");
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe("[distx] log cap reached (20 bytes, 100 lines per task): dropped 1 more line(s), 11 byte(s)");
  });

  it("keeps at most maxLines lines", () => {
    const log = new KernelLog(4096, 3);
    for (let i = 0; i < 10; i++) log.write(enc(`line ${i}`));
    expect(log.lines()).toEqual(["line 0", "line 1", "line 2", "[distx] log cap reached (4096 bytes, 3 lines per task): dropped 7 more line(s), 42 byte(s)"]);
  });

  it("counts the escaped form against the cap (an escape cannot smuggle bytes past it)", () => {
    const log = new KernelLog(8, 10);
    log.add("\x1b\x1b\x1b"); // 12 bytes once escaped
    expect(log.lines()[0]).toBe("\\x1b\\x1b");
  });

  it("0 bytes keeps nothing but still says what was dropped", () => {
    const log = new KernelLog(0, 10);
    log.write(enc("hi"));
    expect(log.lines()).toEqual(["[distx] log cap reached (0 bytes, 10 lines per task): dropped 1 more line(s), 2 byte(s)"]);
  });

  it("the scheduler bounds an agent's lines again: sanitised, and no more than any agent may send", () => {
    expect(boundLogLines(["a\x1bb"])).toEqual(["a\\x1bb"]);
    const flood = Array.from({ length: 5000 }, () => "y".repeat(100));
    const kept = boundLogLines(flood);
    expect(kept.length).toBeLessThanOrEqual(MAX_KERNEL_LOG_LINES + 2);
    expect(kept.join("").length).toBeLessThan(MAX_KERNEL_LOG_BYTES + 512);
    expect(kept.at(-1)).toMatch(/^\[distx\] log cap reached .* dropped \d+ more line/);
  });

  it("travel in task-event records (the proto's TaskUpdate.logs) and count in their size budget", () => {
    const u: TaskUpdateIn = { jobId: "j", taskIndex: 1, attempt: 1, state: "TASK_STATE_FAILED", output: Buffer.alloc(10), logs: ["a", "é"] };
    expect(decodeUpdates(encodeUpdates([u]))[0]!.logs).toEqual(["a", "é"]);
    expect(updateBytes(u)).toBe(10 + (1 + 2) + (2 + 2));
  });

  it("is configurable on the agent, within bounds", () => {
    const base = { scheduler: "127.0.0.1:7070" };
    expect(agentConfigSchema.parse(base)).toMatchObject({ kernelLogBytes: 4096, kernelLogLines: 100 });
    expect(agentConfigSchema.parse({ ...base, kernelLogBytes: "512", kernelLogLines: "5" })).toMatchObject({ kernelLogBytes: 512, kernelLogLines: 5 });
    expect(agentConfigSchema.safeParse({ ...base, kernelLogBytes: MAX_KERNEL_LOG_BYTES + 1 }).success).toBe(false);
    expect(agentConfigSchema.safeParse({ ...base, kernelLogLines: 0 }).success).toBe(false);
  });
});

describe("env.log in the sandbox", () => {
  it("is an allowed import; a kernel that uses it imports it, one that does not, does not", async () => {
    expect(ALLOWED_IMPORTS.get("env.log")).toBe("function");
    expect(WebAssembly.Module.imports(logKernel).map((i) => `${i.module}.${i.name}`)).toContain("env.log");
    const echo = await build("echo.ts");
    expect(WebAssembly.Module.imports(echo).map((i) => `${i.module}.${i.name}`)).not.toContain("env.log");
  });

  it("a host without env.log refuses such a kernel at registration, naming the import (as an older scheduler does)", async () => {
    // The same module with its import renamed in place (same length): what an older host's allow-list sees in env.log.
    const bytes = Buffer.from(await readFile(path.join(outDir, "log.wasm")));
    const at = bytes.indexOf(Buffer.from([3, ...Buffer.from("log")]));
    expect(at).toBeGreaterThan(0);
    bytes.write("lOg", at + 1, "latin1");
    await expect(compileWasmKernel(bytes)).rejects.toThrow(/^kernel imports env\.lOg \(function\); distx-abi-1 allows only env\.memory, env\.abort, env\.seed, env\.shared_input, env\.shared_input_len, env\.log$/);
  });

  it("returns the lines, sanitised (escape sequences, newlines and invalid UTF-8 defused)", () => {
    const { log, error } = run(logKernel, [0, 7]);
    expect(error).toBeUndefined();
    expect(log.lines()).toEqual(["hello from task 7", "forged \\x1b[2J\\x0aERROR line", "A\ufffd\ufffdB"]);
  });

  it("past the default cap (4 KiB, 100 lines): the first lines, the crossing one cut, then a marker with what was dropped", () => {
    const lines = run(logKernel, [1]).log.lines();
    // 81 lines of 50 bytes fit in 4096; the 82nd keeps 46; 218 more are dropped.
    expect(lines).toHaveLength(83);
    expect(lines[0]).toBe(`line 000 ${"x".repeat(41)}`);
    expect(lines[81]).toBe(`line 081 ${"x".repeat(37)}`);
    expect(lines[82]).toBe("[distx] log cap reached (4096 bytes, 100 lines per task): dropped 218 more line(s), 10904 byte(s)");
  });

  it("a trap after logging keeps the lines", () => {
    const { log, error } = run(logKernel, [2]);
    expect(error?.code).toBe("TRAP");
    expect(log.lines()).toEqual(["about to trap"]);
  });

  it("bytes outside the kernel's memory trap with a clear message", () => {
    const { log, error } = run(logKernel, [3]);
    expect(error?.code).toBe("TRAP");
    expect(error?.message).toMatch(/^kernel trapped: log\(ptr=4294967280, len=64\): the bytes are outside the kernel's \d+-byte memory$/);
    expect(log.lines()).toEqual([]);
  });

  it("through the agent's worker pool: lines come back with a result, a trap and a timeout", async () => {
    const pool = new WorkerPool({ size: 1 });
    try {
      const task = (mode: number) => ({ kernelId: "log", module: logKernel, input: new Uint8Array([mode, 9]), timeoutMs: 10_000, memoryLimitBytes: 1 << 24, log: { maxBytes: 1024, maxLines: 2 } });
      const ok = await pool.run(task(0)).promise;
      expect(ok.logs).toEqual(["hello from task 9", "forged \\x1b[2J\\x0aERROR line", "[distx] log cap reached (1024 bytes, 2 lines per task): dropped 1 more line(s), 4 byte(s)"]);
      const failed = await pool.run(task(2)).promise.then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(failed).toBeInstanceOf(TaskFailure);
      expect((failed as TaskFailure).code).toBe("TRAP");
      expect((failed as TaskFailure).logs).toEqual(["about to trap"]);
      // A task stopped by its timeout: its worker is terminated, the lines come from the log mirror.
      const hung = await pool.run({ ...task(4), timeoutMs: 300 }).promise.then(
        () => undefined,
        (err: unknown) => err,
      );
      expect((hung as TaskFailure).code).toBe("TIMEOUT");
      expect((hung as TaskFailure).logs).toEqual(["spinning 1", "spinning 2", "[distx] log cap reached (1024 bytes, 2 lines per task): dropped 1 more line(s), 10 byte(s)"]);
      // The next task on the fresh worker has its own log only.
      expect((await pool.run(task(0)).promise).logs?.[0]).toBe("hello from task 9");
      // Without a cap given, nothing is kept (and nothing travels).
      const { log: _cap, ...noLog } = task(0);
      expect((await pool.run(noLog).promise).logs).toBeUndefined();
    } finally {
      await pool.close();
    }
  });

  // The C and Rust cases skip only where clang/rustc for wasm32 are missing and CI has not required
  // them (DISTX_KERNEL_LANG_TESTS=require, set by scripts/setup/50-kernel-langs.sh in CI).
  it.skipIf(!requireLangs && !haveToolchain("c"))("C: distx_log and distx_log_str, kept through a trap", async () => {
    const c = await build("log.c");
    expect(WebAssembly.Module.imports(c).map((i) => `${i.module}.${i.name}`)).toContain("env.log");
    expect(run(c, [0, 1]).log.lines()).toEqual(["hello from C", "bytes \\x1b[31m"]);
    const trapped = run(c, [2]);
    expect(trapped.error?.code).toBe("TRAP");
    expect(trapped.log.lines()).toEqual(["hello from C", "bytes \\x1b[31m"]);
    // A C kernel that never calls distx_log does not import env.log: it runs on agents older than logging.
    expect(WebAssembly.Module.imports(await build("trap_line.c")).map((i) => `${i.module}.${i.name}`)).not.toContain("env.log");
  }, 60_000);

  it.skipIf(!requireLangs && !haveToolchain("rust"))("Rust: distx::log, kept through a trap; a Rust kernel that never logs does not import it", async () => {
    const rust = await build("rust_log");
    expect(run(rust, [0, 1]).log.lines()).toEqual(["hello from Rust", "bell \\x07 é"]);
    const trapped = run(rust, [2]);
    expect(trapped.error?.code).toBe("TRAP");
    expect(trapped.log.lines()).toEqual(["hello from Rust", "bell \\x07 é"]);
    const quiet = await build("rust_trap");
    expect(WebAssembly.Module.imports(quiet).map((i) => `${i.module}.${i.name}`)).not.toContain("env.log");
  }, 120_000);
});
