// The GPU sandbox under attack. First wall: kernel sources that try to get code past the checker
// (comments of every kind, escapes, template literals, constructor chains, prototype tricks,
// getters, with, arguments, eval, very long or deep sources, odd parameter lists) are all
// refused with a clear reason, and what gpu.js does compile is text we generated. Second wall:
// JavaScript that did get past the first wall, run under exactly the executor's sandboxed launch,
// cannot spawn a process, read a secret, write a file, open a socket, or take unbounded memory
// or CPU.
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { spawnSync, type ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { executorLaunch, GpuExecutorPool } from "../../../agent/gpu/executor-pool.js";
import { hostTools, launchSandboxed, planSandbox, type SandboxLaunch, type SandboxPlan } from "../../../agent/gpu/sandbox.js";
import { TaskFailure } from "../../../agent/pool/types.js";
import { stripComments } from "../../../kernels/gpu/build.js";
import { checkKernelSource, compileGpuKernel, encodeGpuModule, GpuModuleError, parseGpuModule } from "../../../kernels/gpu/module.js";
import { repoRoot } from "../../../common/paths.js";
import { buildExamples } from "../../helpers/gpu.js";
import { EXPLOIT_MARKER, exploitModule, exploitSource } from "../../helpers/gpu-exploits.js";

const examples = await buildExamples();
const check = (src: string, args: (string | { name: string; depth: number })[] = ["a"], consts = ["k"]) => () => checkKernelSource(src, args, consts);

describe("first wall: escape attempts are refused at the checker", () => {
  const cases: [string, string, RegExp][] = [
    // Comments of every kind JavaScript knows, where gpu.js's regexes and acorn disagree.
    ["block comment in the parameter list", "function (a /*) { return process; } (b*/) { return a[0]; }", /comments are not allowed/],
    ["line comment in the parameter list", "function (a // ) , b=process.exit(\n) { return a[0]; }", /comments are not allowed/],
    ["HTML open comment <!-- in the parameter list", "function (a <!-- ) , b=process\n) { return a[0]; }", /comments are not allowed/],
    ["HTML close comment --> at a line start", "function (a\n--> , b=process\n) { return a[0]; }", /comments are not allowed/],
    ["HTML close comment after a multi-line block comment", "function (a /*\n*/ --> , b=1\n) { return a[0]; }", /comments are not allowed/],
    ["the reported exploit shape, without escapes", "function\n--> /*\n(a) {\n--> */ (x=globalThis[process.exit])\nreturn 1;\n}", /comments are not allowed/],
    ["the reported exploit, verbatim", exploitSource(EXPLOIT_MARKER), /backslash|backtick|comments/],
    ["a comment in the body", "function (a) { return a[0]; // fine?\n}", /comments are not allowed/],
    ["a comment before the function", "/* hi */ function (a) { return a[0]; }", /comments are not allowed/],
    ["a hashbang", "#!/usr/bin/env node\nfunction (a) { return a[0]; }", /does not parse/],
    // Strings in every disguise.
    ["a template literal", "function (a) { return `${a}`.length; }", /backtick/],
    ["a tagged template", "function (a) { return Math.max`1`; }", /backtick/],
    ["a unicode escape in an identifier", "function (a) { return a.\\u0063onstructor; }", /backslash/],
    ["a unicode escape in a parameter", "function (\\u0061) { return 1; }", /backslash/],
    ["a string literal", "function (a) { return a['constructor']; }", /only number and boolean literals/],
    ["a regular expression", "function (a) { return /x/.source; }", /only number and boolean literals|property access/],
    ["a bigint", "function (a) { return 1n; }", /only number and boolean literals/],
    ["a non-ASCII identifier", "function (a) { const \u00e7 = 1; return \u00e7; }", /U\+00E7/],
    ["a U+2028 line separator", "function (a) {\u2028return a[0]; }", /U\+2028/],
    ["a U+2029 paragraph separator", "function (a) { return a[0];\u2029}", /U\+2029/],
    ["a NUL character", "function (a) { return a[0]; }\u0000", /U\+0000/],
    ["a byte-order mark", "\ufefffunction (a) { return a[0]; }", /U\+FEFF/],
    // Building a string out of numbers and arrays, then indexing with it.
    ["an array used in arithmetic (would make a string)", "function (a) { const s = a + 1; return s; }", /array is used as a number/],
    ["an array as an index", "function (a) { return a[a]; }", /array is used as a number/],
    ["indexing a number", "function (a) { const s = a[0]; return s[0]; }", /only array arguments and vector locals may be indexed/],
    // Constructor chains and prototype tricks.
    ["constructor.constructor", "function (a) { return a.constructor.constructor('return process')(); }", /only Math\.\* functions may be called/],
    ["a constructor property", "function (a) { return a[0].constructor; }", /property access \.constructor is not allowed/],
    ["Math.constructor", "function (a) { return Math.constructor; }", /Math\.constructor is not allowed/],
    ["Math.max.constructor", "function (a) { return Math.max.constructor; }", /property access \.constructor is not allowed/],
    ["an uncalled Math function", "function (a) { const f = Math.max; return 1; }", /Math\.max may only be called/],
    ["__proto__", "function (a) { return a.__proto__; }", /property access \.__proto__ is not allowed/],
    ["this.constructor", "function (a) { return this.constructor; }", /this\.constructor is not allowed/],
    ["this.thread.constructor", "function (a) { return this.thread.constructor; }", /this\.thread\.constructor is not allowed/],
    ["this.constants.constructor", "function (a) { return this.constants.constructor; }", /not declared/],
    ["this.constants['k']", "function (a) { return this.constants['k']; }", /indexing is only allowed on arguments and locals/],
    ["bare this", "function (a) { return this; }", /`this` may only be used/],
    ["a call through call()", "function (a) { return Math.max.call(0, 1); }", /only Math\.\* functions may be called/],
    ["optional chaining", "function (a) { return a?.[0]; }", /ChainExpression is not allowed/],
    // Getters, objects, classes, functions.
    ["a getter", "function (a) { const o = { get x() { return 1; } }; return o.x; }", /ObjectExpression is not allowed/],
    ["a class", "function (a) { class X {} return 1; }", /ClassDeclaration is not allowed/],
    ["a nested function", "function (a) { const f = function () { return 1; }; return 1; }", /nested functions/],
    ["an arrow function", "function (a) { const f = () => 1; return 1; }", /nested functions/],
    ["new", "function (a) { return new Float32Array(1)[0]; }", /NewExpression is not allowed/],
    // Scope tricks.
    ["with", "function (a) { with (Math) { return max(1, 2); } }", /WithStatement is not allowed/],
    ["arguments", "function (a) { return arguments[0][0]; }", /unknown name arguments/],
    ["eval", "function (a) { return eval('1'); }", /only Math\.\* functions may be called/],
    ["Function", "function (a) { return Function; }", /unknown name Function/],
    ["globalThis", "function (a) { return globalThis; }", /unknown name globalThis/],
    ["process", "function (a) { return process.pid; }", /property access \.pid is not allowed/],
    ["dynamic import", "function (a) { return import('fs'); }", /ImportExpression is not allowed/],
    ["shadowing Math", "function (a) { let Math = 1; return Math; }", /Math cannot be declared/],
    ["assigning Math", "function (a) { Math = 1; return 1; }", /unknown name Math/],
    ["assigning an array argument", "function (a) { a = 1; return 1; }", /a is an array and cannot be assigned/],
    ["writing into an array", "function (a) { a[0] = 1; return 1; }", /only numeric locals and scalar arguments may be assigned/],
    ["a label", "function (a) { x: for (;;) { break x; } return 1; }", /LabeledStatement is not allowed/],
    ["try/catch", "function (a) { try { return 1; } catch (e) { return e; } }", /TryStatement is not allowed/],
    ["throw", "function (a) { throw 1; }", /ThrowStatement is not allowed/],
    ["a sequence expression", "function (a) { return (0, a[0]); }", /SequenceExpression is not allowed/],
    ["typeof", "function (a) { return typeof a; }", /operator typeof is not allowed/],
    ["delete", "function (a) { return delete a[0]; }", /operator delete is not allowed/],
    ["in", "function (a) { return 0 in a; }", /operator in is not allowed/],
    ["instanceof", "function (a) { return a instanceof Math.max; }", /operator instanceof is not allowed/],
    ["an infinite literal", "function (a) { return 1e400; }", /must be finite/],
    ["an immediately invoked wrapper", "function (a) { return 1; })(process.exit(), function (a) { return 1; }", /exactly one `function/],
    ["two functions", "function (a) { return 1; }, function (a) { return 2; }", /exactly one `function/],
    ["an arrow kernel", "(a) => a[0]", /exactly one `function/],
    ["an async kernel", "async function (a) { return 1; }", /async/],
    // Parameter lists.
    ["a default value", "function (a = process.exit()) { return 1; }", /plain names/],
    ["destructuring", "function ({ a }) { return 1; }", /plain names/],
    ["array destructuring", "function ([a]) { return 1; }", /plain names/],
    ["a rest parameter", "function (...a) { return 1; }", /plain names/],
    ["a parameter the module does not declare", "function (a, b) { return 1; }", /must match args/],
    ["a local destructuring", "function (a) { const [x] = [1, 2]; return x; }", /destructuring/],
    // Size.
    ["deep nesting", `function (a) { return ${"- ".repeat(200)}1; }`, /nesting deeper than 64 levels/],
    ["deeper nesting than the parser's stack", `function (a) { return ${"[".repeat(60000)}${"]".repeat(60000)}; }`, /does not parse|nesting deeper|array literals/],
  ];
  it.each(cases)("refuses %s", (_name, src, why) => {
    expect(check(src)).toThrow(GpuModuleError);
    expect(check(src)).toThrow(why);
  });

  it("refuses a source over 64 KiB, and module names that are object-prototype keys, at the module level", () => {
    const base = parseGpuModule(examples.gemm_gpu.bytes);
    const long = `function (a, b) { return ${"1 + ".repeat(20_000)}1; }`;
    expect(() => parseGpuModule(encodeGpuModule({ ...base, source: long }))).toThrow(/source/);
    const proto = { ...base, header: [...base.header, { name: "__proto__", type: "u32" as const }] };
    expect(() => parseGpuModule(encodeGpuModule(proto))).toThrow(/__proto__/);
    expect(() => parseGpuModule(encodeGpuModule({ ...base, constants: { constructor: "k" } }))).toThrow(/constructor/);
  });
});

describe("first wall: gpu.js compiles only text we generated", () => {
  const require = createRequire(path.join(repoRoot(), "package.json"));
  // gpu.js's own reading of a function's parameter list (the regex reader that was fooled).
  const gpuUtils = require("gpu.js/src/utils.js") as { utils: { getArgumentNamesFromString(s: string): string[] } };
  const compiled = Object.values(examples).map((b) => compileGpuKernel(parseGpuModule(b.bytes)));

  it("the generated text is plain ASCII with generated names, no comments, and gpu.js reads the same parameters we do", () => {
    for (const c of compiled) {
      expect(c.source).toMatch(/^[\x20-\x7e\n]*$/);
      expect(c.source).not.toMatch(/\/\/|\/\*|<!--|-->|['"`\\]/);
      expect(c.source.startsWith(`function (${c.params.join(", ")}) {`)).toBe(true);
      expect(c.params.every((p, i) => p === `p${i}`)).toBe(true);
      expect(gpuUtils.utils.getArgumentNamesFromString(c.source)).toEqual(c.params);
    }
  });

  it("the module's own names never reach gpu.js", () => {
    const src = "function (a, b) { let sum = 0; for (let p = 0; p < this.constants.k; p++) { sum += a[this.thread.y][p] * b[p][this.thread.x]; } return sum; }";
    const out = checkKernelSource(src, [{ name: "a", depth: 2 }, { name: "b", depth: 2 }], ["k"]);
    expect(out.source).not.toMatch(/\b(a|b|sum|p|k)\b/);
    expect(out.source).toContain("this.constants.c0");
    expect([...out.constants]).toEqual([["k", "c0"]]);
  });

  it("numbers are printed by us, vectors and control flow survive, and the text is a fixed point", () => {
    const src = "function (x) { let n = 0.50; const v = [x, 2e3]; var i = 0; while (i < 3) { i++; if (i == 2) continue; else n += 1.25e-7; } do { n = n > 1 ? n : -n; } while (false); return [v[0] + n, Math.PI]; }";
    const out = checkKernelSource(src, [{ name: "x", depth: 0 }], []);
    expect(out.source).toContain("let v0 = 0.5;");
    expect(out.source).toContain("const v1 = [p0, 2000];");
    expect(out.source).toContain("1.25e-7");
    const again = checkKernelSource(out.source, [{ name: "p0", depth: 0 }], []);
    expect(again.source).toBe(out.source);
  });

  it("`distx kernel build` removes an author's comments, and the result passes", () => {
    const src = stripComments("function (a) {\n  // the first element\n  return a[0]; /* done */\n}");
    expect(src).not.toMatch(/\/\/|\/\*/);
    expect(() => checkKernelSource(src, ["a"], [])).not.toThrow();
  });
});

describe("first wall in the executor: a module that skipped registration is refused there too", () => {
  let pool: GpuExecutorPool;
  beforeAll(async () => {
    rmSync(EXPLOIT_MARKER, { force: true });
    pool = new GpuExecutorPool({ mode: "cpu", executors: 1, memoryLimitMb: 256 });
    await pool.start();
  });
  afterAll(() => pool.close());

  it("the reported exploit, sent straight to a cpu-mode executor with its true id, fails INVALID_KERNEL and runs nothing", async () => {
    const bytes = exploitModule(EXPLOIT_MARKER);
    const kernelId = createHash("sha256").update(bytes).digest("hex");
    const err = await pool.run({ kernelId, module: bytes, input: new Uint8Array(16 + 8), timeoutMs: 10_000 }).promise.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskFailure);
    expect((err as TaskFailure).code).toBe("INVALID_KERNEL");
    expect((err as TaskFailure).message).toMatch(/backslash|backtick|comments/);
    expect(existsSync(EXPLOIT_MARKER)).toBe(false);
  });
});

// ───────────── second wall ─────────────

interface Outcome {
  ok: boolean;
  permission?: string;
  value?: unknown;
  code?: string;
  message?: string;
}

class Probe {
  private nextId = 1;
  private readonly waiting = new Map<number, (o: Outcome) => void>();
  stderr = "";
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  constructor(
    readonly child: ChildProcess,
    readonly plan: SandboxPlan,
  ) {
    child.stderr?.on("data", (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    child.stdout?.resume();
    child.on("message", (m: { type: string; id?: number } & Outcome) => {
      if (m.type === "outcome") this.waiting.get(m.id!)?.(m);
    });
    this.exited = new Promise((r) => child.on("exit", (code, signal) => r({ code, signal })));
  }
  static async start(launch: SandboxLaunch): Promise<Probe> {
    const { child, plan } = launchSandboxed(launch);
    const p = new Probe(child, plan);
    await new Promise<void>((resolve, reject) => {
      child.on("message", (m: { type: string }) => m.type === "ready" && resolve());
      void p.exited.then((e) => reject(new Error(`probe exited (${e.signal ?? e.code}): ${p.stderr}`)));
    });
    return p;
  }
  run(code: string, args: Record<string, unknown> = {}): Promise<Outcome> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.child.send({ type: "probe", id, code, args });
    });
  }
  stop(): void {
    this.child.kill("SIGKILL");
  }
}

const probeScript = path.join(repoRoot(), "test", "fixtures", "security", "escape-probe.mjs");
const workDirs: string[] = [];
/** A work folder like the pool's: the sandbox user may enter it, not list or write it. */
function workDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "distx-gpu-probe-"));
  chmodSync(dir, 0o711);
  workDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const d of workDirs) rmSync(d, { recursive: true, force: true });
});
const tools = hostTools();

describe("second wall: code that slipped past the checker, under the executor's own launch", () => {
  let dir: string;
  let secret: string;
  let probe: Probe;
  let server: net.Server;
  let port = 0;
  let connections = 0;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "distx-escape-"));
    chmodSync(dir, 0o755);
    secret = path.join(dir, "secret.txt");
    writeFileSync(secret, "the agent's secret\n", { mode: 0o600 });
    chmodSync(secret, 0o600);
    server = net.createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as net.AddressInfo).port;
    const work = workDir();
    // The executor's launch for cpu mode (`--gpu off`, the mode that was exploited).
    probe = await Probe.start(executorLaunch(probeScript, "cpu", { memoryLimitMb: 256 }, work));
  }, 30_000);
  afterAll(async () => {
    probe?.stop();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it("reports every wall up on this host (root, util-linux, Node 20 permission model)", () => {
    const walls = Object.fromEntries(probe.plan.walls.map((w) => [w.name, w.on]));
    if (tools.root) expect(walls).toEqual({ network: true, user: true, limits: true, permissions: true });
    else expect(walls.permissions).toBe(true);
  });

  it("runs as an unprivileged user with no supplementary groups", async () => {
    const r = await probe.run("return { uid: process.getuid(), gid: process.getgid(), groups: process.getgroups() };");
    expect(r.ok).toBe(true);
    // Node's getgroups() lists the effective gid too.
    if (tools.root) expect(r.value).toMatchObject({ uid: 65534, gid: 65534 });
    if (tools.root) expect((r.value as { groups: number[] }).groups.filter((g) => g !== 65534)).toEqual([]);
  });

  it("cannot spawn a process, by any route", async () => {
    const attempts = [
      "return process.getBuiltinModule('child_process').execFileSync('/bin/id').toString();",
      "return process.getBuiltinModule('child_process').spawnSync('/bin/sh', ['-c', 'id']).stdout.toString();",
      "return process.binding('spawn_sync').spawn({ file: '/bin/id', args: ['/bin/id'], stdio: [] });",
      "const { Worker } = process.getBuiltinModule('worker_threads'); new Worker('1', { eval: true }); return 'worker';",
      "return process.dlopen({ exports: {} }, '/usr/lib/x86_64-linux-gnu/libc.so.6');",
    ];
    for (const code of attempts) {
      const r = await probe.run(code);
      expect(r, code).toMatchObject({ ok: false });
      expect(r.code, code).toMatch(/ERR_ACCESS_DENIED|ERR_DLOPEN_DISABLED/);
    }
  });

  it("the reported exploit, compiled by gpu.js cpu mode as the old executor did, cannot run its command", async () => {
    rmSync(EXPLOIT_MARKER, { force: true });
    const r = await probe.run(
      `const require = process.getBuiltinModule('module').createRequire(args.pkg);
       const { GPU, input } = require('gpu.js');
       const k = new GPU({ mode: 'cpu' }).createKernel(args.src, { output: [2], argumentTypes: { a: 'Input' } });
       return k(input(new Float32Array([1, 2]), [2]));`,
      { pkg: path.join(repoRoot(), "package.json"), src: exploitSource(EXPLOIT_MARKER) },
    );
    // The payload reached child_process (so the first wall is really bypassed here) and was denied.
    expect(r).toMatchObject({ ok: false, code: "ERR_ACCESS_DENIED", permission: "ChildProcess" });
    expect(existsSync(EXPLOIT_MARKER)).toBe(false);
  });

  it("cannot read a secret (root-owned, mode 0600) nor any file outside its own code", async () => {
    for (const file of [secret, "/etc/hostname", "/etc/passwd", path.join(repoRoot(), "package-lock.json")]) {
      const r = await probe.run("return process.getBuiltinModule('fs').readFileSync(args.file, 'utf8');", { file });
      expect(r, file).toMatchObject({ ok: false, code: "ERR_ACCESS_DENIED", permission: "FileSystemRead" });
    }
    const list = await probe.run("return process.getBuiltinModule('fs').readdirSync(args.dir);", { dir });
    expect(list).toMatchObject({ ok: false, code: "ERR_ACCESS_DENIED" });
  });

  // Dropping to another uid needs root; as non-root the test below checks that the wall is reported down.
  it.skipIf(!tools.root)("the user wall alone also keeps the secret: allowed by the permission model, refused by the kernel", async () => {
    const work = workDir();
    const launch = executorLaunch(probeScript, "cpu", { memoryLimitMb: 256 }, work);
    const p = await Probe.start({ ...launch, mayRead: [secret] });
    try {
      const r = await p.run("return process.getBuiltinModule('fs').readFileSync(args.file, 'utf8');", { file: secret });
      expect(r).toMatchObject({ ok: false, code: "EACCES" });
    } finally {
      p.stop();
    }
  });

  it("cannot write a file", async () => {
    const target = path.join(os.tmpdir(), `distx-escape-write-${process.pid}`);
    for (const code of [
      "process.getBuiltinModule('fs').writeFileSync(args.target, 'x'); return 'written';",
      "process.getBuiltinModule('fs').mkdirSync(args.target); return 'made';",
      "return process.getBuiltinModule('fs').openSync(args.target, 'w');",
    ]) {
      const r = await probe.run(code, { target });
      expect(r, code).toMatchObject({ ok: false, code: "ERR_ACCESS_DENIED", permission: "FileSystemWrite" });
    }
    expect(existsSync(target)).toBe(false);
  });

  // Needs a way to make a network namespace (root, or unprivileged user namespaces); without one the
  // wall is reported down (checked in "second wall degrades loudly").
  it.skipIf(!tools.netns && !tools.userNetns)("cannot open a network connection: not to this host's loopback, not out", async () => {
    const tcp = await probe.run(
      `const net = process.getBuiltinModule('net');
       return await new Promise((resolve, reject) => {
         const s = net.connect(args.port, '127.0.0.1', () => { s.destroy(); resolve('connected'); });
         s.on('error', reject);
       });`,
      { port },
    );
    expect(tcp).toMatchObject({ ok: false });
    expect(tcp.code).toMatch(/ENETUNREACH|ECONNREFUSED|EADDRNOTAVAIL/);
    const out = await probe.run(
      `const net = process.getBuiltinModule('net');
       return await new Promise((resolve, reject) => {
         const s = net.connect(80, '1.1.1.1', () => { s.destroy(); resolve('connected'); });
         s.on('error', reject);
       });`,
    );
    expect(out).toMatchObject({ ok: false, code: "ENETUNREACH" });
    const udp = await probe.run(
      `const dgram = process.getBuiltinModule('dgram');
       const s = dgram.createSocket('udp4');
       return await new Promise((resolve, reject) => s.send('x', 53, '1.1.1.1', (err) => { s.close(); err ? reject(err) : resolve('sent'); }));`,
    );
    expect(udp).toMatchObject({ ok: false });
    const ifaces = await probe.run("return Object.keys(process.getBuiltinModule('os').networkInterfaces());");
    expect(ifaces).toMatchObject({ ok: true, value: [] });
    expect(connections).toBe(0);
  });

  it("cannot take more memory than its cap", async () => {
    const r = await probe.run("const b = new ArrayBuffer(6 * 1024 * 1024 * 1024); return b.byteLength;");
    expect(r).toMatchObject({ ok: false });
    expect(r.message).toMatch(/allocation failed|Array buffer/i);
  });

  // prlimit is util-linux; without it the limits wall is reported down, not silently missing.
  it.skipIf(!tools.prlimit)("a CPU-time cap ends a process that spins (RLIMIT_CPU)", async () => {
    const work = workDir();
    const launch = executorLaunch(probeScript, "cpu", { memoryLimitMb: 256, cpuSeconds: 1 }, work);
    const p = await Probe.start(launch);
    void p.run("for (;;) {}");
    const exit = await p.exited;
    expect(exit.signal).toMatch(/SIGXCPU|SIGKILL/);
  }, 20_000);

  it("auto mode (GL) allows native addons, and nothing else more", async () => {
    const work = workDir();
    const p = await Probe.start(executorLaunch(probeScript, "auto", { memoryLimitMb: 256 }, work));
    try {
      const addon = await p.run("process.dlopen({ exports: {} }, '/nonexistent.node'); return 'loaded';");
      expect(addon.code).not.toBe("ERR_DLOPEN_DISABLED");
      const spawn = await p.run("return process.getBuiltinModule('child_process').execFileSync('/bin/id').toString();");
      expect(spawn).toMatchObject({ ok: false, code: "ERR_ACCESS_DENIED" });
      const write = await p.run("process.getBuiltinModule('fs').writeFileSync('/tmp/distx-escape-auto', 'x');");
      expect(write).toMatchObject({ ok: false, code: "ERR_ACCESS_DENIED" });
    } finally {
      p.stop();
    }
  });
});

describe("second wall degrades loudly, never silently", () => {
  it("code other users cannot read keeps the executor's own user, and says why", () => {
    const hidden = mkdtempSync(path.join(os.tmpdir(), "distx-hidden-"));
    chmodSync(hidden, 0o700);
    const script = path.join(hidden, "x.mjs");
    writeFileSync(script, "");
    mkdirSync(path.join(hidden, "w"));
    const plan = planSandbox({ script, cwd: hidden, env: {}, limits: { heapMb: 64, addressSpaceMb: 1024, cpuSeconds: 10 }, readPaths: [], allowAddons: false });
    const user = plan.walls.find((w) => w.name === "user")!;
    expect(user.on).toBe(false);
    expect(user.detail).toMatch(tools.root ? /not readable by other users/ : /not root/);
    rmSync(hidden, { recursive: true, force: true });
  });

  // Simulates a non-root agent by dropping privileges with setpriv, which itself needs root.
  it.skipIf(!tools.root || !tools.setpriv)("an agent that is not root still runs its executor, and says the user wall is down and why", () => {
    const script = path.join(repoRoot(), "test", "fixtures", "security", "pool-walls.mjs");
    const r = spawnSync(tools.setpriv!, ["--reuid=65534", "--regid=65534", "--clear-groups", "--", process.execPath, script, path.join(repoRoot(), "dist")], {
      env: { PATH: process.env.PATH, HOME: os.tmpdir(), TMPDIR: os.tmpdir() },
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as { walls: { name: string; on: boolean; detail: string }[]; backend: string; uid: number };
    expect(out.uid).toBe(65534);
    expect(out.backend).toBe("cpu");
    const byName = Object.fromEntries(out.walls.map((w) => [w.name, w]));
    expect(byName.user).toMatchObject({ on: false });
    expect(byName.user!.detail).toMatch(/not root/);
    expect(byName.permissions).toMatchObject({ on: true });
    expect(byName.limits).toMatchObject({ on: true });
    // An unprivileged user+network namespace where the kernel allows it; said so where not.
    if (!byName.network!.on) expect(byName.network!.detail).toMatch(/refuses new network namespaces|not installed/);
  }, 60_000);

  it("the pool announces its walls (the agent logs each one that is down as a warning)", async () => {
    const pool = new GpuExecutorPool({ mode: "cpu", executors: 1, memoryLimitMb: 256 });
    const seen: SandboxPlan[] = [];
    pool.on("sandbox", (p: SandboxPlan) => seen.push(p));
    try {
      await pool.start();
      expect(seen).toHaveLength(1);
      expect(seen[0]!.walls.map((w) => w.name).sort()).toEqual(["limits", "network", "permissions", "user"]);
      for (const w of seen[0]!.walls) expect(w.detail.length).toBeGreaterThan(10);
    } finally {
      await pool.close();
    }
  });
});

