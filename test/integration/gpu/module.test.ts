// The gpu.js module format: validation refuses anything outside the safe kernel subset,
// inputs are decoded with clear errors, and GPU placement/rejection are pure and tested here.
import { describe, expect, it } from "vitest";
import { parseNvidiaSmi } from "../../../agent/gpu/detect.js";
import { checkKernelSource, decodeTask, encodeGpuModule, GPU_ABI, GpuModuleError, parseGpuModule, type GpuKernelModule } from "../../../kernels/gpu/module.js";
import { candidatesFor, gpuRejection } from "../../../scheduler/placement/gpu.js";
import type { PlacementNode } from "../../../scheduler/placement/index.js";
import type { ResourceNeeds } from "../../../scheduler/model.js";
import { buildExamples } from "../../helpers/gpu.js";

const examples = await buildExamples();

describe("gpu kernel source subset", () => {
  const ok = (src: string, args = ["a"], consts = new Set(["k"])) => () => checkKernelSource(src, args, consts);
  it("accepts the examples", () => {
    for (const b of Object.values(examples)) expect(() => parseGpuModule(b.bytes)).not.toThrow();
  });
  it.each([
    ["function (a) { return process.pid; }", /property access \.pid is not allowed/],
    ["function (a) { return process; }", /unknown name process/],
    ["function (a) { return globalThis.x; }", /property access \.x is not allowed/],
    ["function (a) { return a[0] + globalThis; }", /unknown name globalThis/],
    ["function (a) { return a.constructor; }", /property access \.constructor/],
    ["function (a) { return a['constructor']; }", /only number and boolean literals/],
    ["function (a) { return eval(1); }", /only Math\.\* functions/],
    ["function (a) { return this.constructor; }", /this\.constructor is not allowed/],
    ["function (a) { return this.constants.nope; }", /not declared/],
    ["function (a) { const f = function () { return 1; }; return 1; }", /nested functions/],
    ["function (a) { return new Float32Array(1)[0]; }", /NewExpression/],
    ["function (a) { return Math['random'](); }", /only Math\.\* functions may be called/],
    ["(a) => a[0]", /exactly one `function/],
    ["function (b) { return b[0]; }", /must match args/],
  ])("refuses %s", (src, why) => {
    expect(ok(src)).toThrow(GpuModuleError);
    expect(ok(src)).toThrow(why);
  });
});

describe("gpu module layout", () => {
  const base = parseGpuModule(examples.gemm_gpu.bytes);
  const bytes = (m: Partial<GpuKernelModule>) => encodeGpuModule({ ...base, ...m });
  it("names unknown header fields and bad JSON", () => {
    expect(() => parseGpuModule(bytes({ output: ["n", "rows"] }))).toThrow(/output\[1\]: "rows" is not a header field/);
    expect(() => parseGpuModule(new TextEncoder().encode("{"))).toThrow(/UTF-8 JSON/);
    expect(() => parseGpuModule(new TextEncoder().encode(JSON.stringify({ abi: "x" })))).toThrow(/abi/);
  });
  it("decodes inputs and refuses dimensions past the texture limits", () => {
    const input = new Uint8Array(16 + (2 * 3 + 3 * 4) * 4);
    const d = new DataView(input.buffer);
    d.setUint32(0, 2, true);
    d.setUint32(4, 4, true);
    d.setUint32(8, 3, true);
    const t = decodeTask(base, input);
    expect(t.output).toEqual([4, 2]);
    expect(t.constants).toEqual({ k: 3 });
    expect(t.args.map((a) => (typeof a === "number" ? a : a.size))).toEqual([[3, 2], [4, 3]]);
    d.setUint32(4, 20000, true);
    expect(() => decodeTask(base, input)).toThrow(/dimensions must be whole numbers in 1\.\.16384/);
    expect(GPU_ABI).toBe("distx-gpu-1");
  });
});

describe("nvidia-smi parsing", () => {
  it("reads memory and utilisation, and [N/A]", () => {
    const text = "0, NVIDIA H100 80GB HBM3, 81559, 1024, 37\n1, Tesla T4, 15360, 0, [N/A]\n";
    expect(parseNvidiaSmi(text)).toEqual([
      { index: 0, name: "NVIDIA H100 80GB HBM3", memoryTotalBytes: 81559 * 1048576, memoryUsedBytes: 1024 * 1048576, utilization: 0.37 },
      { index: 1, name: "Tesla T4", memoryTotalBytes: 15360 * 1048576, memoryUsedBytes: 0, utilization: -1 },
    ]);
    expect(parseNvidiaSmi("NVIDIA-SMI has failed")).toEqual([]);
  });
});

describe("gpu placement", () => {
  const node = (id: string, gpuBackend: string, gl: boolean): PlacementNode => ({
    id, ready: true, logicalCores: 2, memoryBytes: 1e9, gpuCount: 0, labels: {}, capacity: 2, assigned: 0, speed: 1, gpuBackend,
    kernelKinds: new Set(gl ? ["KERNEL_KIND_WASM", "KERNEL_KIND_GPU"] : ["KERNEL_KIND_WASM"]),
  });
  const needs = (gpuFallback: ResourceNeeds["gpuFallback"]): ResourceNeeds => ({ cores: 0, memoryBytes: 0, gpu: false, nodeSelector: {}, kind: "KERNEL_KIND_GPU", gpuFallback });
  const gpuNode = node("gpu", "headlessgl", true);
  const cpuNode = node("cpu", "cpu", false);
  it("sends GPU kernels only to nodes with a GPU backend", () => {
    expect(candidatesFor(needs("GPU_FALLBACK_WAIT"), [gpuNode, cpuNode]).map((n) => n.id)).toEqual(["gpu"]);
    expect(candidatesFor(needs("GPU_FALLBACK_CPU"), [gpuNode, cpuNode]).map((n) => n.id)).toEqual(["gpu"]);
  });
  it("without a GPU node: WAIT has no candidates, CPU falls back to gpu.js cpu nodes, REJECT explains", () => {
    expect(candidatesFor(needs("GPU_FALLBACK_WAIT"), [cpuNode])).toEqual([]);
    expect(candidatesFor(needs("GPU_FALLBACK_CPU"), [cpuNode, node("none", "", false)]).map((n) => n.id)).toEqual(["cpu"]);
    expect(gpuRejection(needs("GPU_FALLBACK_REJECT"), [cpuNode])).toMatch(/no ready agent has a usable GPU backend .*cpu: gpu backend cpu/);
    expect(gpuRejection(needs("GPU_FALLBACK_REJECT"), [gpuNode])).toBeUndefined();
    expect(gpuRejection(needs("GPU_FALLBACK_WAIT"), [])).toBeUndefined();
  });
});
