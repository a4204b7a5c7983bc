// Shared inputs end to end (real processes, real gRPC over loopback): a gemm job whose B is a
// shared input runs correctly through the typed client (unary, and streamed with B and the A
// blocks as blobs in chunks) and through `distx submit --example gemm --shared`; the agent
// fetches B once for the job, not once per task.
import * as grpc from "@grpc/grpc-js";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { CHANNEL_OPTIONS, v1 } from "../../common/proto.js";
import { secureChannel } from "../../common/secure-channel.js";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliEntry } from "../../cli/local-cluster.js";
import { repoRoot } from "../../common/paths.js";
import { gemm } from "../../kernels/reference/gemm.js";
import { exampleWasm } from "../helpers/fixtures.js";
import { metricOf } from "../helpers/blob-rig.js";
import { startTestCluster, type TestCluster } from "../helpers/cluster.js";

let c: TestCluster;

beforeAll(async () => {
  c = await startTestCluster("shared-inputs", { agents: 1, workersPerAgent: 2 });
}, 60_000);

afterAll(async () => {
  await c?.stop();
});

const agentMetric = (name: string) => metricOf(c.cluster, "agent-0", name);

async function runSharedGemm(size: number, tasks: number, seed: number): Promise<{ fetches: number; fetchedBytes: number; inputs: Uint8Array[]; b: Uint8Array }> {
  const { kernelId } = await c.client.registerKernel(await exampleWasm("gemm"), { name: "gemm" });
  const { inputs, shared } = gemm.shared!.makeTasks({ tasks, size, seed });
  const fetches = await agentMetric("distx_agent_blob_fetches_total");
  const fetchedBytes = await agentMetric("distx_agent_blob_fetched_bytes_total");
  const { job } = await c.client.run({ kernelId, inputs, sharedInputs: shared, timeoutMs: 120_000 });
  expect(job.state).toBe("JOB_STATE_SUCCEEDED");
  const results = await c.client.getResults(job.jobId);
  expect(results.length).toBe(tasks);
  const b = shared[0]!.data;
  for (const r of results) {
    const check = gemm.check(gemm.shared!.inline(inputs[r.taskIndex]!, [b]), r.output);
    expect(check.ok, `task ${r.taskIndex}: ${check.detail}`).toBe(true);
  }
  return {
    fetches: (await agentMetric("distx_agent_blob_fetches_total")) - fetches,
    fetchedBytes: (await agentMetric("distx_agent_blob_fetched_bytes_total")) - fetchedBytes,
    inputs,
    b,
  };
}

describe("shared inputs", () => {
  it("gemm 128² in 8 tasks with B shared (one SubmitJob): B fetched once for the job", async () => {
    const { fetches, fetchedBytes, b } = await runSharedGemm(128, 8, 11);
    // The A blocks (8 KiB) travel inline; B (64 KiB) is fetched once, not 8 times.
    expect(fetches).toBe(1);
    expect(fetchedBytes).toBe(b.byteLength);
  }, 120_000);

  it("gemm 1024² in 8 tasks with B shared (streamed: B and the A blocks as blobs in chunks): B fetched once", async () => {
    const { fetches, fetchedBytes, inputs, b } = await runSharedGemm(1024, 8, 12);
    // Each A block (512 KiB) goes by reference and is fetched once; B (4 MiB) once for all 8 tasks.
    expect(fetches).toBe(1 + inputs.length);
    expect(fetchedBytes).toBe(b.byteLength + inputs.reduce((s, i) => s + i.byteLength, 0));
  }, 180_000);

  it("distx submit --example gemm --shared checks every output against the reference", async () => {
    const files = c.cluster.credentialFiles();
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [cliEntry(), "submit", "--scheduler", c.address, "--ca", files.caFile, "--token-file", files.tokenFile, "--example", "gemm", "--shared", "--tasks", "4", "--size", "128", "--no-progress"],
      { cwd: repoRoot(), timeout: 60_000 },
    );
    expect(stdout).toMatch(/check: all 4 task outputs match the JS reference/);
  }, 90_000);

  it("refuses blobs that do not match their hash, references to blobs never sent, and references in SubmitJob", async () => {
    const { kernelId } = await c.client.registerKernel(await exampleWasm("gemm"), { name: "gemm" });
    const tls = secureChannel(c.address, { ca: readFileSync(c.cluster.credentialFiles().caFile) });
    const stub = new (v1().DistributeX)(c.address, tls.credentials, { ...CHANNEL_OPTIONS, ...tls.options });
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${c.adminToken}`);
    const stream = (messages: object[]) =>
      new Promise<grpc.ServiceError | null>((resolve) => {
        const call = stub.SubmitJobStream(md, (err) => resolve(err));
        for (const m of messages) call.write(m);
        call.end();
      });
    const data = Buffer.alloc(2048, 3);
    const sha256 = createHash("sha256").update(data).digest("hex");
    const header = { header: { kernelId, tasks: [], sharedInputs: [{ name: "B", ref: { sha256, sizeBytes: String(data.byteLength) } }] } };
    try {
      const wrong = await stream([header, { blob: { sha256, sizeBytes: String(data.byteLength), data: Buffer.alloc(2048, 4) } }, { tasks: { items: [{ data: Buffer.alloc(16) }] } }]);
      expect(wrong?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(wrong?.details).toMatch(/do not match that sha256/);
      const missing = await stream([header, { tasks: { items: [{ data: Buffer.alloc(16) }] } }]);
      expect(missing?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(missing?.details).toMatch(/shared input B names blob .* did not send complete/);
      const overlong = await stream([header, { blob: { sha256, sizeBytes: String(data.byteLength), data: Buffer.alloc(4096) } }]);
      expect(overlong?.code).toBe(grpc.status.INVALID_ARGUMENT);
      const unary = await new Promise<grpc.ServiceError | null>((resolve) =>
        stub.SubmitJob({ kernelId, tasks: [{ ref: { sha256, sizeBytes: "2048" } }] }, md, (err) => resolve(err)),
      );
      expect(unary?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(unary?.details).toMatch(/SubmitJob takes data only/);
    } finally {
      stub.close();
    }
    expect((await c.client.listNodes()).map((n) => n.state)).toEqual(["NODE_STATE_READY"]);
  }, 60_000);
});
