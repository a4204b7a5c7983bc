// Bad input gets a clear gRPC status with a useful message, and the cluster keeps serving.
import { channelCredentials, resolveCredentials } from "../../client/credentials.js";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DistributeXError } from "../../client/index.js";
import { getExampleKernel } from "../../kernels/reference/index.js";
import { startTestCluster, type TestCluster } from "../helpers/cluster.js";
import { exampleWasm, fixtureKernel } from "../helpers/fixtures.js";

let t: TestCluster;

beforeAll(async () => {
  t = await startTestCluster("bad-input", {
    schedulerArgs: ["--heartbeat-interval-ms", "200", "--agent-timeout-ms", "2000", "--max-tasks-per-job", "1000"],
  });
});

afterAll(async () => {
  await t?.stop();
});

async function rejection(p: Promise<unknown>): Promise<DistributeXError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DistributeXError) return err;
    throw err;
  }
  throw new Error("expected the call to be rejected");
}

async function register(name: "trap" | "trap_line" | "spin" | "hog" | "echo") {
  return (await t.client.registerKernel(await fixtureKernel(name), { name })).kernelId;
}

describe("bad input", () => {
  it("refuses bytes that are not WebAssembly", async () => {
    const err = await rejection(t.client.registerKernel(Buffer.from("#!/bin/sh\nrm -rf /\n")));
    expect(err.codeName).toBe("INVALID_ARGUMENT");
    expect(err.details).toMatch(/not a WebAssembly module/);
    const truncated = (await exampleWasm("saxpy")).subarray(0, 40);
    const err2 = await rejection(t.client.registerKernel(truncated));
    expect(err2.codeName).toBe("INVALID_ARGUMENT");
    expect(err2.details).toMatch(/invalid WebAssembly module/);
  });

  it("refuses a module that breaks the kernel ABI", async () => {
    // A valid module that imports a host function the sandbox does not offer.
    const wasm = Buffer.from(
      "0061736d01000000010401600000020d0103656e76056576696c210000",
      "hex",
    );
    const err = await rejection(t.client.registerKernel(wasm));
    expect(err.codeName).toBe("INVALID_ARGUMENT");
    expect(err.details).toMatch(/imports env\.evil!/);
  });

  it("refuses at registration a kernel whose ABI version the agents do not speak", async () => {
    // The abi_v1 fixture with its distx_abi_version body (`i32.const 1; end`, 0 locals) made to answer 3.
    const v1 = Buffer.from(await fixtureKernel("abi_v1"));
    const body = Buffer.from([0x04, 0x00, 0x41, 0x01, 0x0b]);
    const at = v1.indexOf(body);
    expect(at).toBeGreaterThan(0);
    expect(v1.indexOf(body, at + 1)).toBe(-1);
    v1[at + 3] = 0x03;
    const err = await rejection(t.client.registerKernel(v1, { name: "abi_v3" }));
    expect(err.codeName).toBe("INVALID_ARGUMENT");
    expect(err.details).toMatch(/kernel speaks ABI version 3 \(its distx_abi_version\(\)\); agents speak 1 and 2/);
  });

  it("fails only the tasks of a kernel that traps, with the trap's message", async () => {
    const kernelId = await register("trap");
    const { job, results } = await t.client.run({ kernelId, inputs: [Buffer.alloc(4), Buffer.alloc(4)] });
    expect(job.state).toBe("JOB_STATE_FAILED");
    expect(job.firstError?.code).toBe("TRAP");
    expect(job.firstError?.message).toMatch(/deliberate trap/);
    expect(results.every((r) => r.state === "TASK_STATE_FAILED" && r.error?.code === "TRAP")).toBe(true);
    expect(job.retries).toBe(0); // a trap is the kernel's fault: it is not retried elsewhere
  });

  it("a real wasm trap's error names the author's file, line and function", async () => {
    // trap_line.ts divides by zero on its line 8; the build's distx.srcmap section maps it.
    const kernelId = await register("trap_line");
    const { job, results } = await t.client.run({ kernelId, inputs: [Buffer.alloc(4)] });
    expect(job.state).toBe("JOB_STATE_FAILED");
    expect(results[0]?.error?.code).toBe("TRAP");
    expect(results[0]?.error?.message).toMatch(/^kernel trapped: divide by zero at trap_line\.ts:8:\d+ in \S*distx_run$/);
    expect(job.firstError?.message).toBe(results[0]?.error?.message);
  });

  it("times out a kernel that never returns, and replaces its worker", async () => {
    const kernelId = await register("spin");
    const started = Date.now();
    const { job, results } = await t.client.run({ kernelId, inputs: [Buffer.alloc(4)], timeoutMs: 500 });
    expect(job.state).toBe("JOB_STATE_FAILED");
    expect(results[0]?.error?.code).toBe("TIMEOUT");
    expect(results[0]?.error?.message).toMatch(/timeout of 500 ms/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("stops a kernel at its memory cap", async () => {
    const kernelId = await register("hog");
    const { job, results } = await t.client.run({ kernelId, inputs: [Buffer.alloc(4)], resources: { memoryBytes: 16 * 1024 * 1024 } });
    expect(job.state).toBe("JOB_STATE_FAILED");
    expect(results[0]?.error?.code).toBe("MEMORY_LIMIT");
    expect(results[0]?.error?.message).toMatch(/memory cap of 16777216 bytes/);
  });

  it("answers NOT_FOUND for an unknown kernel id", async () => {
    const err = await rejection(t.client.submitJob({ kernelId: "a".repeat(64), inputs: [Buffer.alloc(1)] }));
    expect(err.codeName).toBe("NOT_FOUND");
    expect(err.details).toMatch(/unknown kernel a{64}/);
  });

  it("refuses an empty job and an oversized one", async () => {
    const kernelId = await register("echo");
    const empty = await rejection(t.client.submitJob({ kernelId, inputs: [] }));
    expect(empty.codeName).toBe("INVALID_ARGUMENT");
    expect(empty.details).toMatch(/at least one task/);
    const big = await rejection(t.client.submitJob({ kernelId, inputs: Array.from({ length: 1001 }, () => Buffer.alloc(4)) }));
    expect(big.codeName).toBe("RESOURCE_EXHAUSTED");
    expect(big.details).toMatch(/1001 tasks; the limit is 1000/);
  });

  it("names the malformed field", async () => {
    const kernelId = await register("echo");
    const cases: [Promise<unknown>, RegExp][] = [
      [t.client.submitJob({ kernelId: "not-a-hash", inputs: [Buffer.alloc(4)] }), /kernel_id must be the 64 lowercase hex digits/],
      [t.client.submitJob({ kernelId, inputs: [Buffer.alloc(4)], priority: 1000 }), /priority must be between -100 and 100/],
      [t.client.submitJob({ kernelId, inputs: [Buffer.alloc(4)], timeoutMs: 2 ** 31 }), /timeout_ms .* is above the limit/],
      [t.client.getJob("12345"), /job_id must look like job-<uuid>/],
      [t.client.getKernel("xyz"), /kernel_id must be 64 lowercase hex digits/],
    ];
    for (const [call, message] of cases) {
      const err = await rejection(call);
      expect(err.codeName).toBe("INVALID_ARGUMENT");
      expect(err.details).toMatch(message);
    }
  });

  it("answers a request that is not valid protobuf with a status, not a crash", async () => {
    // The cluster's own CA (secure by default) and its admin token: a caller without credentials
    // is refused before its body is read (test/e2e/security/unauthenticated-body.test.ts).
    const raw = new grpc.Client(t.address, channelCredentials(resolveCredentials(t.address)));
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${t.adminToken}`);
    const err = await new Promise<grpc.ServiceError>((resolve) =>
      raw.makeUnaryRequest(
        "/distributex.v1.DistributeX/SubmitJob",
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from([0x12, 0x64, 0x01, 0x02]), // field 2 (tasks) claims 100 bytes; 2 follow
        md,
        (e) => resolve(e!),
      ),
    );
    raw.close();
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/malformed SubmitJob request: index out of range/);
  });

  it("refuses to cancel a finished job", async () => {
    const kernelId = await register("echo");
    const { job } = await t.client.run({ kernelId, inputs: [Buffer.alloc(8)] });
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    const err = await rejection(t.client.cancelJob(job.jobId));
    expect(err.codeName).toBe("FAILED_PRECONDITION");
    expect(err.details).toMatch(/already finished \(succeeded\)/);
  });

  it("keeps serving afterwards: both agents up, and a real job succeeds on them", async () => {
    for (const p of t.cluster.processes) expect(p.child.exitCode).toBeNull();
    const nodes = await t.client.listNodes();
    expect(nodes.map((n) => n.state)).toEqual(["NODE_STATE_READY", "NODE_STATE_READY"]);
    const example = getExampleKernel("histogram");
    const { kernelId } = await t.client.registerKernel(await exampleWasm("histogram"));
    const inputs = example.makeTasks({ tasks: 8 });
    const { job, results } = await t.client.run({ kernelId, inputs });
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    for (const r of results) expect(example.check(inputs[r.taskIndex]!, r.output).ok).toBe(true);
  });
});
