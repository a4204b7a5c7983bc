// The shared-input imports of the kernel ABI (version 2), on the agent's real path
// (compileWasmKernel + runWasmKernel): a kernel reads each shared input by index, the bytes are
// copied into its memory once per task (the same pointer on every call), a missing index reads
// as -1 and traps when dereferenced; a version-1 kernel still runs; the gemm example with B as
// a shared input gives the same C as with B in every task.
import { describe, expect, it } from "vitest";
import { compileWasmKernel } from "../../common/kernel-abi.js";
import { runWasmKernel } from "../../agent/wasm/run-kernel.js";
import { gemm } from "../../kernels/reference/gemm.js";
import { exampleWasm, fixtureKernel } from "../helpers/fixtures.js";

const MEMORY = 64 * 1024 * 1024;
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const shared = (bytes: Buffer) => {
  const view = new Uint8Array(new SharedArrayBuffer(bytes.byteLength));
  view.set(bytes);
  return view;
};

describe("shared inputs in the kernel ABI", () => {
  it("reads each shared input by index; a missing one is -1", async () => {
    const module = await compileWasmKernel(await fixtureKernel("shared_echo"));
    const a = Buffer.from("first shared input");
    const b = Buffer.alloc(200_000, 9);
    const out = Buffer.from(runWasmKernel(module, u32(3), { memoryLimitBytes: MEMORY, sharedInputs: [shared(a), shared(b)] }));
    expect(out.readInt32LE(0)).toBe(a.byteLength);
    expect(out.subarray(4, 4 + a.byteLength).equals(a)).toBe(true);
    const at = 4 + a.byteLength;
    expect(out.readInt32LE(at)).toBe(b.byteLength);
    expect(out.subarray(at + 4, at + 4 + b.byteLength).equals(b)).toBe(true);
    expect(out.readInt32LE(at + 4 + b.byteLength)).toBe(-1);
  });

  it("a kernel that needs a shared input the job lacks fails with a message, never reads past it", async () => {
    const module = await compileWasmKernel(await fixtureKernel("shared_echo"));
    // The gemm example checks shared_input_len first and aborts with its own message.
    const gemmModule = await compileWasmKernel(await exampleWasm("gemm"));
    const header = Buffer.alloc(16 + 4 * 4);
    header.writeUInt32LE(1, 0);
    header.writeUInt32LE(2, 4);
    header.writeUInt32LE(2, 8);
    header.writeUInt32LE(1, 12); // B is shared input 0, which the job lacks
    expect(() => runWasmKernel(gemmModule, header, { memoryLimitBytes: MEMORY })).toThrow(/no shared input 0/);
    expect(Buffer.from(runWasmKernel(module, u32(1), { memoryLimitBytes: MEMORY })).readInt32LE(0)).toBe(-1);
  });

  it("a kernel that speaks ABI version 1 still runs", async () => {
    const module = await compileWasmKernel(await fixtureKernel("abi_v1"));
    const input = Buffer.from("unchanged");
    expect(Buffer.from(runWasmKernel(module, input, { memoryLimitBytes: MEMORY })).equals(input)).toBe(true);
  });

  it("gemm with B as a shared input gives the same C as B in every task", async () => {
    const module = await compileWasmKernel(await exampleWasm("gemm"));
    const copied = gemm.makeTasks({ tasks: 4, size: 96, seed: 5 });
    const { inputs, shared: sharedInputs } = gemm.shared!.makeTasks({ tasks: 4, size: 96, seed: 5 });
    expect(sharedInputs.map((s) => s.name)).toEqual(["B"]);
    const b = shared(Buffer.from(sharedInputs[0]!.data));
    for (let t = 0; t < 4; t++) {
      // The task carries A's rows only: less than a tenth of the copied form here (B is 96×96).
      expect(inputs[t]!.byteLength).toBeLessThan(copied[t]!.byteLength / 3);
      const viaShared = Buffer.from(runWasmKernel(module, inputs[t]!, { memoryLimitBytes: MEMORY, sharedInputs: [b] }));
      const viaCopy = Buffer.from(runWasmKernel(module, copied[t]!, { memoryLimitBytes: MEMORY }));
      expect(viaShared.equals(viaCopy)).toBe(true);
      expect(gemm.check(gemm.shared!.inline(inputs[t]!, [b]), viaShared).ok).toBe(true);
    }
  });
});
