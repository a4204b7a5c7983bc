// From defect 10 of the reliability issue: GPU-kind tasks that succeeded were not counted in
// distx_agent_tasks_completed_total (only WebAssembly ones were). Runs a GPU kernel in gpu.js cpu
// mode (no GL needed) on a real agent and reads the agent's /metrics.
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { DistributeXClient } from "../../../client/index.js";
import { LocalCluster } from "../../../cli/local-cluster.js";
import { builtKernelsDir, repoRoot } from "../../../common/paths.js";
import { gpuExamples } from "../../../kernels/gpu/reference.js";

const cluster = new LocalCluster({
  agents: 1,
  workersPerAgent: 1,
  logs: path.join(repoRoot(), "test-output", "logs", `gpu-counted-${Date.now()}`),
  agentArgs: () => ["--gpu", "off", "--no-calibrate"],
});
let client: DistributeXClient;

beforeAll(async () => {
  await cluster.start();
  client = new DistributeXClient(cluster.address);
}, 90_000);
afterAll(async () => {
  client?.close();
  await cluster.stop(5000);
});

it("successful GPU-kind tasks are counted as succeeded, backend gpu", async () => {
  const { kernelId } = await client.registerKernelFile(path.join(builtKernelsDir(), "gemm_gpu.gpu.json"));
  const inputs = gpuExamples.gemm_gpu.makeTasks({ tasks: 3, size: 16 });
  const { job } = await client.run({ kernelId, inputs, gpuFallback: "cpu", skipResultCache: true });
  expect(job.state).toBe("JOB_STATE_SUCCEEDED");
  const text = await (await fetch(`http://${await cluster.adminAddress("agent-0")}/metrics`)).text();
  const counted = text
    .split("\n")
    .filter((l) => l.startsWith("distx_agent_tasks_completed_total{") && l.includes('backend="gpu"') && l.includes('outcome="succeeded"'))
    .reduce((s, l) => s + Number(l.split(" ").pop()), 0);
  expect(counted).toBe(3);
}, 90_000);
