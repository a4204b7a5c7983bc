// The scheduler takes gRPC messages of at most MAX_MESSAGE_BYTES (64 MiB, was 256 MiB): big data
// travels in chunks (SubmitJobStream blobs, FetchBlob), so nothing legitimate needs more. A
// larger request is refused from its length prefix, before it is buffered; the typed client
// still submits inputs far above the limit (streamed as blobs); a task output no message could
// carry fails for good as OUTPUT_TOO_LARGE instead of resetting its agent's session.
import * as grpc from "@grpc/grpc-js";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHANNEL_OPTIONS, MAX_MESSAGE_BYTES } from "../../../common/proto.js";
import { secureChannel } from "../../../common/secure-channel.js";
import { fixtureKernel } from "../../helpers/fixtures.js";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";
import { MiB, mib, procMemory, schedulerPid } from "../../helpers/rss.js";

let c: TestCluster;
let echo = "";

beforeAll(async () => {
  c = await startTestCluster("message-limit", { agents: 1, workersPerAgent: 1 });
  ({ kernelId: echo } = await c.client.registerKernel(await fixtureKernel("echo"), { name: "echo" }));
}, 60_000);

afterAll(async () => {
  await c?.stop();
});

/** A SubmitJobRequest with one task of `bytes` bytes, encoded by hand (sent as raw bytes). */
function oneTaskRequest(bytes: number): Buffer {
  const varint = (n: number) => {
    const out: number[] = [];
    for (; n >= 128; n = Math.floor(n / 128)) out.push((n % 128) | 0x80);
    out.push(n);
    return Buffer.from(out);
  };
  const id = Buffer.from(echo);
  const taskInput = Buffer.concat([Buffer.from([0x0a]), varint(bytes)]); // TaskInput.data header
  const task = Buffer.concat([Buffer.from([0x12]), varint(taskInput.length + bytes), taskInput]);
  return Buffer.concat([Buffer.from([0x0a, id.length]), id, task, Buffer.alloc(bytes)]);
}

describe("message size limit", () => {
  it("a unary SubmitJob over the limit gets RESOURCE_EXHAUSTED without the scheduler holding it", async () => {
    const pid = schedulerPid(c.cluster);
    const before = procMemory(pid, "VmHWM");
    const tls = secureChannel(c.address, { ca: readFileSync(c.cluster.credentialFiles().caFile) });
    // The client may send as much as it likes: only the server's limit is under test.
    const client = new grpc.Client(c.address, tls.credentials, { ...CHANNEL_OPTIONS, ...tls.options, "grpc.max_send_message_length": -1 });
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${c.adminToken}`);
    const body = oneTaskRequest(MAX_MESSAGE_BYTES + MiB);
    const err = await new Promise<grpc.ServiceError | null>((resolve) =>
      client.makeUnaryRequest("/distributex.v1.DistributeX/SubmitJob", (b: Buffer) => b, (b: Buffer) => b, body, md, { deadline: Date.now() + 60_000 }, (e) => resolve(e)),
    );
    client.close();
    expect(err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(err?.details).toMatch(/larger than max/);
    const peak = procMemory(pid, "VmHWM");
    console.log(`scheduler peak RSS ${mib(before)} → ${mib(peak)} (65 MiB request refused)`);
    // Refused from its length prefix: far less than the request was ever held.
    expect(peak - before).toBeLessThan(48 * MiB);
    expect((await c.client.listNodes()).map((n) => n.state)).toEqual(["NODE_STATE_READY"]);
  }, 60_000);

  it("the typed client still submits a task input above the limit (as a blob in chunks); an output above it fails OUTPUT_TOO_LARGE", async () => {
    const input = Buffer.alloc(MAX_MESSAGE_BYTES + MiB); // echo: no spins, output = input
    const { job } = await c.client.run({ kernelId: echo, inputs: [input], timeoutMs: 60_000, resources: { memoryBytes: 512 * MiB } });
    expect(job.state).toBe("JOB_STATE_FAILED");
    expect(job.retries).toBe(0);
    expect(job.firstError?.code).toBe("OUTPUT_TOO_LARGE");
    expect(job.firstError?.retryable).toBe(false);
    // The session stayed up: the node never went down.
    expect((await c.client.listNodes(true)).map((n) => n.state)).toEqual(["NODE_STATE_READY"]);
    // And an output just under it comes back (paged alone by GetResults).
    const under = Buffer.alloc(32 * MiB);
    under.writeUInt32LE(0, 0);
    under[under.length - 1] = 7;
    const ok = await c.client.run({ kernelId: echo, inputs: [under], timeoutMs: 60_000, resources: { memoryBytes: 512 * MiB } });
    expect(ok.job.state).toBe("JOB_STATE_SUCCEEDED");
    const [result] = await c.client.getResults(ok.job.jobId);
    expect(Buffer.from(result!.output).equals(under)).toBe(true);
  }, 180_000);
});
