// `distx kernel run` / `kernel test` underneath: the local sandbox is the agent's (its worker pool,
// memory cap, timeout), and the tester finds, shrinks and reports a mismatch precisely.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { firstMismatch, testKernel } from "../../kernels/toolchain/kernel-test.js";
import { LocalSandbox } from "../../kernels/toolchain/local-run.js";
import { loadReference, type KernelReference } from "../../kernels/toolchain/reference.js";
import { formatOutput } from "../../cli/commands/kernel-dev.js";
import { fixtureKernel } from "../helpers/fixtures.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "distx-kernel-dev-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function sandbox(name: Parameters<typeof fixtureKernel>[0], opts: { memoryMb?: number; timeoutMs?: number } = {}): Promise<LocalSandbox> {
  const file = path.join(dir, `${name}.wasm`);
  writeFileSync(file, await fixtureKernel(name));
  return LocalSandbox.open(file, opts);
}

const u32 = (n: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
};

describe("the local sandbox (distx kernel run)", () => {
  it("runs a kernel and says how much memory it grew to", async () => {
    const s = await sandbox("echo");
    try {
      const r = await s.run(new Uint8Array([1, 2, 3]), 1);
      expect(r.ok && Array.from(r.output)).toEqual([1, 2, 3]);
      expect(r.ok && r.memoryBytes).toBeGreaterThanOrEqual(65536);
    } finally {
      await s.close();
    }
  });

  it("has the agent's caps: memory (MEMORY_LIMIT from heap.alloc; a direct memory.grow answers -1) and time (TIMEOUT)", async () => {
    const hog = await sandbox("hog", { memoryMb: 8 });
    const grow = await sandbox("grow_direct", { memoryMb: 8 });
    const spin = await sandbox("spin", { timeoutMs: 300 });
    try {
      expect(await hog.run(new Uint8Array(4), 1)).toMatchObject({ ok: false, code: "MEMORY_LIMIT" });
      // Past the cap memory.grow fails softly: the kernel goes on with what it has.
      const refused = await grow.run(u32(1000), 1);
      expect(refused.ok && formatOutput(refused.output, "i32")).toBe("-1");
      const granted = await grow.run(u32(2), 1);
      expect(granted.ok && Number(formatOutput(granted.output, "i32"))).toBeGreaterThan(0);
      const t0 = Date.now();
      expect(await spin.run(new Uint8Array(4), 1)).toMatchObject({ ok: false, code: "TIMEOUT" });
      expect(Date.now() - t0).toBeLessThan(10_000);
    } finally {
      await Promise.all([hog.close(), grow.close(), spin.close()]);
    }
  });

  it("refuses a module that breaks the ABI, as RegisterKernel does", async () => {
    const file = path.join(dir, "junk.wasm");
    writeFileSync(file, "not wasm");
    await expect(LocalSandbox.open(file)).rejects.toThrow(/magic number/);
  });
});

// abi_v1 returns its input unchanged (echo's first word is a spin count, which random inputs would make long).
describe("the tester (distx kernel test)", () => {
  const echoRef = (mutate?: (out: Uint8Array) => void): KernelReference => ({
    reference: (input) => {
      const out = input.slice();
      mutate?.(out);
      return out;
    },
    makeInput: (size, draw) => {
      const b = new Uint8Array(size * 4);
      const v = new DataView(b.buffer);
      for (let i = 0; i < size; i++) v.setFloat32(i * 4, draw.f32(), true);
      return b;
    },
    compare: { type: "f32", absTol: 0, relTol: 0 },
  });

  it("passes a kernel that matches its reference over every size and run", async () => {
    const s = await sandbox("abi_v1");
    try {
      expect(await testKernel(s, echoRef(), { seed: 1, runsPerSize: 2, sizes: [0, 1, 7, 100], shrinkBudget: 100 })).toEqual({ ok: true, cases: 8 });
    } finally {
      await s.close();
    }
  });

  it("shrinks a failure to its smallest input and names the first element that differs", async () => {
    const s = await sandbox("abi_v1");
    try {
      // The reference disagrees at element 5 whenever there is one and it is above 10.
      const ref = echoRef((out) => {
        const v = new DataView(out.buffer);
        if (out.byteLength >= 24 && v.getFloat32(20, true) > 10) v.setFloat32(20, 0, true);
      });
      const r = await testKernel(s, ref, { seed: 3, runsPerSize: 5, sizes: [100, 1000], shrinkBudget: 500 });
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.failing.size).toBe(6);
      expect(r.mismatch.index).toBe(5);
      expect(r.mismatch.what).toMatch(/^output\[5\] \(f32\): expected 0, got [\d.]+ \(exact\)$/);
      const got = new DataView(r.input.buffer).getFloat32(20, true);
      expect(got).toBeGreaterThan(10);
      expect(got).toBeLessThan(40); // shrunk towards the boundary, from values up to ±1000
      // Elements other than the one that matters shrank to 0.
      expect(Array.from(new Float32Array(r.input.buffer, 0, 5))).toEqual([0, 0, 0, 0, 0]);
    } finally {
      await s.close();
    }
  });

  it("compares within a tolerance, NaN equal to NaN, and reports a length difference", () => {
    const f32 = (...xs: number[]) => new Uint8Array(new Float32Array(xs).buffer);
    const tol = { type: "f32" as const, absTol: 0, relTol: 1e-3 };
    expect(firstMismatch(f32(1000, NaN), f32(1000.5, NaN), tol)).toBeUndefined();
    expect(firstMismatch(f32(1000, 1), f32(1000, 1.01), tol)?.what).toBe("output[1] (f32): expected 1, got 1.0099999904632568 (tolerance 0 + 0.001·|expected| = 0.001)");
    expect(firstMismatch(f32(1, 2), f32(1), tol)?.what).toMatch(/output is 4 bytes, expected 8 \(2 f32 elements\)/);
  });

  it("loads a TypeScript reference (transpiled with the typescript package)", async () => {
    const file = path.join(dir, "ref.ts");
    writeFileSync(file, 'export function reference(input: Uint8Array, seed: number): Uint8Array { return input.map((b: number) => b ^ seed); }\nexport const compare = { type: "u8" } as const;\n');
    const ref = await loadReference(file);
    expect(Array.from(ref.reference(new Uint8Array([1, 2]), 3))).toEqual([2, 1]);
    expect(ref.compare).toEqual({ type: "u8", absTol: 0, relTol: 0 });
    writeFileSync(path.join(dir, "bad.mjs"), "export const x = 1;\n");
    await expect(loadReference(path.join(dir, "bad.mjs"))).rejects.toThrow(/must export a function `reference\(input: Uint8Array, seed: number\): Uint8Array`/);
  });
});
