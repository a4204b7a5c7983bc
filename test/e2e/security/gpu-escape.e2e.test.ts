// The reported exploit class end to end: a real scheduler and a real agent without GL
// (`--gpu off`, gpu.js cpu mode: where it ran as root), over loopback gRPC. RegisterKernel
// refuses every variant with INVALID_ARGUMENT and the reason; nothing runs; honest GPU kernels
// still register and compute the same results; the agent logs its sandbox's walls.
import { existsSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DistributeXError } from "../../../client/index.js";
import { builtKernelsDir } from "../../../common/paths.js";
import { encodeGpuModule, parseGpuModule } from "../../../kernels/gpu/module.js";
import { gpuExamples } from "../../../kernels/gpu/reference.js";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";
import { EXPLOIT_MARKER, exploitModule } from "../../helpers/gpu-exploits.js";

const gemmFile = path.join(builtKernelsDir(), "gemm_gpu.gpu.json");

describe("GPU kernel escapes through RegisterKernel on a real scheduler", () => {
  let t: TestCluster;
  beforeAll(async () => {
    rmSync(EXPLOIT_MARKER, { force: true });
    t = await startTestCluster("gpu-escape", { agents: 1, agentArgs: () => ["--gpu", "off", "--no-calibrate"] });
  }, 90_000);
  afterAll(async () => {
    await t?.stop();
  });

  const refused = async (bytes: Uint8Array): Promise<DistributeXError> => {
    const err = await t.client.registerKernel(bytes, { kind: "gpu" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DistributeXError);
    return err as DistributeXError;
  };

  it("the reported exploit is refused with INVALID_ARGUMENT and a reason, and never runs", async () => {
    const err = await refused(exploitModule(EXPLOIT_MARKER));
    expect(err.codeName).toBe("INVALID_ARGUMENT");
    expect(err.message).toMatch(/kernel source, offset \d+: .*(backslash|backtick|comments)/);
    expect(existsSync(EXPLOIT_MARKER)).toBe(false);
  });

  it("every variant of the class is refused: text one reader skips and another reads", async () => {
    const base = parseGpuModule(readFileSync(gemmFile));
    const variants: [string, RegExp][] = [
      ["function (a, b /*) { x */) { return a[0][0]; }", /comments are not allowed/],
      ["function (a, b <!-- , c=globalThis[process.exit]\n) { return a[0][0]; }", /comments are not allowed/],
      ["function (a, b\n--> , c=globalThis[process.exit]\n) { return a[0][0]; }", /comments are not allowed/],
      ["function (a, b = globalThis[process.exit]) { return a[0][0]; }", /plain names/],
      ["function (a, b) { return a[0][0] + `${process.exit()}`; }", /backtick/],
      ["function (a, \\u0062) { return a[0][0]; }", /backslash/],
      ["function (a, b) {\u2028return a[0][0]; }", /U\+2028/],
      ["function (a, b) { return a.constructor.constructor('return process')(); }", /only Math/],
      ["function (a, b) { with (a) { return 1; } }", /WithStatement/],
      ["function (a, b) { return arguments[0][0][0]; }", /unknown name arguments/],
    ];
    for (const [source, why] of variants) {
      const err = await refused(encodeGpuModule({ ...base, source }));
      expect(err.codeName, source).toBe("INVALID_ARGUMENT");
      expect(err.message, source).toMatch(why);
    }
    expect(existsSync(EXPLOIT_MARKER)).toBe(false);
  });

  it("an honest GPU kernel still registers and computes the same results in gpu.js cpu mode", async () => {
    const { kernelId } = await t.client.registerKernelFile(gemmFile);
    const inputs = gpuExamples.gemm_gpu.makeTasks({ tasks: 2, size: 40 });
    const { job, results } = await t.client.run({ kernelId, inputs, gpuFallback: "cpu", skipResultCache: true });
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    for (const r of results) {
      expect(r.backend).toBe("cpu");
      expect(gpuExamples.gemm_gpu.check(inputs[r.taskIndex]!, r.output).ok).toBe(true);
    }
  });

  it("the agent logs its executor's sandbox walls, and a warning for each one that is down", () => {
    const log = readFileSync(path.join(t.cluster.logDir!, "agent-0.log"), "utf8");
    const line = log.split("\n").find((l) => l.includes('"gpu_sandbox"'));
    expect(line, "agent log has a gpu_sandbox line").toBeDefined();
    const walls = (JSON.parse(line!) as { walls: Record<string, boolean> }).walls;
    expect(Object.keys(walls).sort()).toEqual(["limits", "network", "permissions", "user"]);
    const down = Object.entries(walls).filter(([, on]) => !on).map(([name]) => name);
    for (const name of down) expect(log).toMatch(new RegExp(`"gpu_sandbox_wall_down".*"wall":"${name}"`));
    if (process.getuid?.() === 0) expect(down).toEqual([]);
  });
});
