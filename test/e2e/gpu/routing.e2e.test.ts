// GPU routing end to end: a real scheduler and agents as processes over loopback gRPC.
// "GPU-capable" is an agent whose executor opened a GL context (headless-gl; Mesa under Xvfb
// in CI); "non-GPU" is an agent started with --gpu off (gpu.js cpu mode only).
import { execFileSync } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DistributeXClient } from "../../../client/index.js";
import { LocalCluster } from "../../../cli/local-cluster.js";
import { builtKernelsDir } from "../../../common/paths.js";
import { gpuExamples } from "../../../kernels/gpu/reference.js";
import { probeGl, REQUIRE_GL } from "../../helpers/gpu.js";

// The mixed-cluster tests need an agent that really opens a GL context. A machine without one
// (no X display or GL driver) skips them, as headless-gl cannot run there at all; with
// DISTX_GPU_TESTS=require (CI, under xvfb-run) they always run, so a missing GL fails them.
const runGlTests = (await probeGl()).backend === "headlessgl" || REQUIRE_GL;
const gemmFile = path.join(builtKernelsDir(), "gemm_gpu.gpu.json");
const mandelFile = path.join(builtKernelsDir(), "mandelbrot_gpu.gpu.json");

describe("GPU jobs with only non-GPU agents", () => {
  const cluster = new LocalCluster({ agents: 1, workersPerAgent: 1, logs: "test-output/gpu-routing-cpu", agentArgs: () => ["--gpu", "off", "--no-calibrate"] });
  let client: DistributeXClient;
  let gemmId = "";
  beforeAll(async () => {
    await cluster.start();
    client = new DistributeXClient(cluster.address);
    gemmId = (await client.registerKernelFile(gemmFile)).kernelId;
  }, 90_000);
  afterAll(async () => {
    client?.close();
    await cluster.stop();
  });

  it("the agent advertises gpu.js cpu mode but not the GPU kernel kind", async () => {
    const [node] = await client.listNodes();
    expect(node!.profile!.gpuBackend).toBe("cpu");
    expect(node!.profile!.kernelKinds).not.toContain("KERNEL_KIND_GPU");
  });

  it("REJECT: refused at submit with a clear reason", async () => {
    const inputs = gpuExamples.gemm_gpu.makeTasks({ tasks: 1, size: 16 });
    await expect(client.submitJob({ kernelId: gemmId, inputs, gpuFallback: "reject", skipResultCache: true })).rejects.toThrow(/no ready agent has a usable GPU backend/);
  });

  it("WAIT: the job stays pending", async () => {
    const inputs = gpuExamples.gemm_gpu.makeTasks({ tasks: 2, size: 16 });
    const { jobId } = await client.submitJob({ kernelId: gemmId, inputs, gpuFallback: "wait", skipResultCache: true });
    await new Promise((r) => setTimeout(r, 1500));
    const job = await client.getJob(jobId);
    expect(job.state).toBe("JOB_STATE_PENDING");
    expect(job.counts!.pending).toBe(2);
    await client.cancelJob(jobId);
  });

  it("CPU fallback: runs in gpu.js cpu mode, and the results say so", async () => {
    const inputs = gpuExamples.gemm_gpu.makeTasks({ tasks: 3, size: 48 });
    const { job, results } = await client.run({ kernelId: gemmId, inputs, gpuFallback: "cpu", skipResultCache: true });
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    for (const r of results) {
      expect(r.backend).toBe("cpu");
      expect(gpuExamples.gemm_gpu.check(inputs[r.taskIndex]!, r.output).ok).toBe(true);
    }
  });

  it("an executor killed mid-task: the task is retried and the agent stays up", async () => {
    const mandelId = (await client.registerKernelFile(mandelFile)).kernelId;
    const inputs = gpuExamples.mandelbrot_gpu.makeTasks({ tasks: 1, size: 1600 });
    const { jobId } = await client.submitJob({ kernelId: mandelId, inputs, gpuFallback: "cpu", maxAttempts: 3, skipResultCache: true });
    const agentPid = cluster.processes.find((p) => p.name === "agent-0")!.child.pid!;
    let killed = false;
    const job = await client.waitForJob(jobId, (ev) => {
      if (!killed && ev.task?.state === "TASK_STATE_RUNNING") {
        killed = true;
        // The executor is the agent's only child process.
        const pids = execFileSync("pgrep", ["-P", String(agentPid)]).toString().trim().split("\n").map(Number);
        for (const pid of pids) process.kill(pid, "SIGKILL");
      }
    });
    expect(killed).toBe(true);
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    expect(job.retries).toBeGreaterThanOrEqual(1);
    const [result] = await client.getResults(jobId);
    expect(result!.attempt).toBeGreaterThanOrEqual(2);
    expect(gpuExamples.mandelbrot_gpu.check(inputs[0]!, result!.output).ok).toBe(true);
    const nodes = await client.listNodes();
    expect(nodes.map((n) => n.state)).toEqual(["NODE_STATE_READY"]);
    expect(cluster.processes.find((p) => p.name === "agent-0")!.child.exitCode).toBeNull();
  });
});

describe.skipIf(!runGlTests)("GPU jobs with a GPU-capable and a non-GPU agent", () => {
  // agent-0: --gpu auto (headlessgl); agent-1: --gpu off.
  const cluster = new LocalCluster({ agents: 2, workersPerAgent: 1, logs: "test-output/gpu-routing-mixed", agentArgs: (i) => (i === 0 ? ["--no-calibrate"] : ["--gpu", "off", "--no-calibrate"]) });
  let client: DistributeXClient;
  beforeAll(async () => {
    await cluster.start();
    client = new DistributeXClient(cluster.address);
  }, 90_000);
  afterAll(async () => {
    client?.close();
    await cluster.stop();
  });

  it("every GPU task goes to the GPU agent and runs on headlessgl, even with CPU fallback allowed", async () => {
    const nodes = await client.listNodes();
    const gpuNode = nodes.find((n) => n.profile!.gpuBackend === "headlessgl");
    expect(gpuNode, "one agent must have opened a GL context").toBeDefined();
    expect(gpuNode!.profile!.kernelKinds).toContain("KERNEL_KIND_GPU");
    for (const [file, name] of [[gemmFile, "gemm_gpu"], [mandelFile, "mandelbrot_gpu"]] as const) {
      const { kernelId } = await client.registerKernelFile(file);
      const inputs = gpuExamples[name].makeTasks({ tasks: 6, size: 96 });
      for (const gpuFallback of ["wait", "cpu"] as const) {
        const { job, results } = await client.run({ kernelId, inputs, gpuFallback, skipResultCache: true });
        expect(job.state).toBe("JOB_STATE_SUCCEEDED");
        for (const r of results) {
          expect(r.nodeId).toBe(gpuNode!.nodeId);
          expect(r.backend).toBe("headlessgl");
          expect(gpuExamples[name].check(inputs[r.taskIndex]!, r.output).ok).toBe(true);
        }
      }
    }
  });

  it("WASM jobs still use both agents", async () => {
    const nodes = await client.listNodes();
    expect(nodes).toHaveLength(2);
    expect(nodes.every((n) => n.profile!.kernelKinds.includes("KERNEL_KIND_WASM"))).toBe(true);
  });
});
