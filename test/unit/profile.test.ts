import { describe, expect, it } from "vitest";
import { buildProfile, simdFeatures, type RawHostReadings } from "../../agent/profile.js";

const base: RawHostReadings = {
  hostname: "worker-7",
  platform: "linux",
  arch: "x64",
  cpu: { manufacturer: "AMD", brand: "EPYC 7B13", physicalCores: 1, cores: 2, speed: 2.45 },
  cpuFlags: "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext invpcid_single ssbd ibrs ibpb stibp vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid rdseed adx smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 clzero xsaveerptr arat npt nrip_save umip vaes vpclmulqdq rdpid fsrm",
  memTotal: 24 * 1024 ** 3,
  graphics: [],
};

describe("host profile", () => {
  it("keeps only SIMD features from the CPU flags", () => {
    expect(simdFeatures(base.cpuFlags)).toEqual(["avx", "avx2", "f16c", "fma", "mmx", "sse", "sse2", "sse4_1", "sse4_2", "sse4a", "ssse3"]);
    expect(simdFeatures("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp sve")).toEqual(["asimd", "asimdhp", "sve"]);
  });

  it("describes a host with no GPU as a normal host", () => {
    const p = buildProfile(base, 2, { zone: "a" });
    expect(p.gpus).toEqual([]);
    expect(p.cpu).toMatchObject({ vendor: "AMD", model: "EPYC 7B13", physicalCores: 1, logicalCores: 2, baseGhz: 2.45 });
    expect(p.memoryBytes).toBe(String(24 * 1024 ** 3));
    expect(p.workers).toBe(2);
    expect(p.labels).toEqual({ zone: "a" });
    expect(p.kernelKinds).toEqual(["KERNEL_KIND_WASM"]);
  });

  it("lists compute GPUs with their memory and drops display-only adapters", () => {
    const p = buildProfile(
      {
        ...base,
        graphics: [
          { vendor: "ASPEED Technology, Inc.", model: "ASPEED Graphics Family", vram: 0 },
          { vendor: "NVIDIA Corporation", model: "NVIDIA H100 80GB HBM3", vram: 81559, memoryTotal: 81559 },
          { vendor: "NVIDIA Corporation", model: "Tesla T4", vram: null, memoryTotal: 15360 },
          { vendor: "Advanced Micro Devices, Inc. [AMD/ATI]", model: "Instinct MI210", vram: 65520 },
        ],
      },
      8,
      {},
    );
    expect(p.gpus).toEqual([
      { vendor: "NVIDIA Corporation", model: "NVIDIA H100 80GB HBM3", memoryBytes: String(81559 * 1024 * 1024) },
      { vendor: "NVIDIA Corporation", model: "Tesla T4", memoryBytes: String(15360 * 1024 * 1024) },
      { vendor: "Advanced Micro Devices, Inc. [AMD/ATI]", model: "Instinct MI210", memoryBytes: String(65520 * 1024 * 1024) },
    ]);
  });

  it("falls back to logical cores when the physical count is unknown", () => {
    const p = buildProfile({ ...base, cpu: { ...base.cpu, physicalCores: 0, cores: 16 } }, 16, {});
    expect(p.cpu?.physicalCores).toBe(16);
  });
});
