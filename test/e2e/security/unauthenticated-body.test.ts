// A caller without valid credentials must not make the scheduler hold its request bodies.
// Authentication used to run in the handler, which grpc-js calls only once the whole request
// message is in: anyone who could open a TLS connection could have the scheduler buffer up to the
// 64 MiB message limit per stream, on as many streams as it liked, before being refused. Now the
// credentials in the call's headers are checked first (scheduler/auth/pre-auth.ts), with the
// caller's role against the method, and a refused call's body is never read; the methods that
// must run without credentials (Join, RenewCertificate, health, reflection) take small messages only.
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";
import { fixtureKernel } from "../../helpers/fixtures.js";
import { rawClient, rawUnary } from "../../helpers/raw-grpc.js";
import { MiB, mib, procMemory, schedulerPid } from "../../helpers/rss.js";

let c: TestCluster;
let raw: grpc.Client;

beforeAll(async () => {
  c = await startTestCluster("unauthenticated-body", { agents: 1, workersPerAgent: 1 });
  raw = rawClient(c);
}, 60_000);

afterAll(async () => {
  raw?.close();
  await c?.stop();
});

const call = (method: string, body: Buffer, authorization?: string) => rawUnary(raw, method, body, authorization);

describe("requests without valid credentials", () => {
  it("are refused from their headers: the scheduler never holds their bodies", async () => {
    const pid = schedulerPid(c.cluster);
    const before = procMemory(pid, "VmHWM");
    const body = Buffer.alloc(48 * MiB, 1);
    // No token (refused at once) and a well-formed but unknown token (refused after the token
    // store is asked: the body must not be read while the lookup is pending).
    const answers = await Promise.all([
      ...[0, 1, 2].map(() => call("/distributex.v1.DistributeX/SubmitJob", body)),
      ...[0, 1, 2].map((i) => call("/distributex.v1.DistributeX/SubmitJob", body, `Bearer dx_unknown${i}_${"a".repeat(40)}`)),
      call("/distributex.v1.AgentService/Register", body),
      call("/distributex.v1.AgentService/UploadOutput", body), // client-streaming
    ]);
    for (const e of answers) expect(e?.code, e?.details).toBe(grpc.status.UNAUTHENTICATED);
    expect(answers[0]?.details).toMatch(/no credentials/);
    const peak = procMemory(pid, "VmHWM");
    console.log(`scheduler peak RSS ${mib(before)} → ${mib(peak)} (8 unauthenticated 48 MiB requests)`);
    // 384 MiB were sent; what the connection's flow-control windows admit is all that may arrive.
    expect(peak - before).toBeLessThan(40 * MiB);
  }, 90_000);

  it("a caller whose role may not call the method is refused from its headers too", async () => {
    const read = (await c.client.createToken({ role: "read", tenant: "default", description: "read only" })).token;
    const pid = schedulerPid(c.cluster);
    const before = procMemory(pid, "VmHWM");
    const body = Buffer.alloc(48 * MiB, 1);
    const answers = await Promise.all([0, 1, 2, 3].map(() => call("/distributex.v1.DistributeX/SubmitJob", body, `Bearer ${read}`)));
    for (const e of answers) {
      expect(e?.code, e?.details).toBe(grpc.status.PERMISSION_DENIED);
      expect(e?.details).toMatch(/SubmitJob/);
    }
    const peak = procMemory(pid, "VmHWM");
    console.log(`scheduler peak RSS ${mib(before)} → ${mib(peak)} (4 read-only 48 MiB SubmitJobs)`);
    expect(peak - before).toBeLessThan(40 * MiB);
  }, 90_000);

  it("the methods open to anyone take small messages only", async () => {
    const pid = schedulerPid(c.cluster);
    const before = procMemory(pid, "VmHWM");
    const body = Buffer.alloc(48 * MiB, 1);
    const answers = await Promise.all([
      call("/distributex.v1.AgentService/Join", body),
      call("/distributex.v1.AgentService/RenewCertificate", body),
      call("/grpc.health.v1.Health/Check", body),
    ]);
    for (const e of answers) {
      expect(e?.code, e?.details).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(e?.details).toMatch(/larger than max/);
    }
    const peak = procMemory(pid, "VmHWM");
    console.log(`scheduler peak RSS ${mib(before)} → ${mib(peak)} (3 open-method 48 MiB requests)`);
    expect(peak - before).toBeLessThan(40 * MiB);
  }, 90_000);

  it("leaves the cluster serving: nodes ready, a job runs, an open method still answers", async () => {
    expect((await c.client.listNodes()).map((n) => n.state)).toEqual(["NODE_STATE_READY"]);
    const { kernelId } = await c.client.registerKernel(await fixtureKernel("echo"), { name: "echo" });
    const input = Buffer.alloc(8); // echo: the first u32 is a spin count (0), output = input
    input[7] = 3;
    const { job, results } = await c.client.run({ kernelId, inputs: [input] });
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    expect(Buffer.from(results[0]!.output)).toEqual(input);
    // A bad join token is refused for its content, so the small-message limit let it through.
    const join = await call("/distributex.v1.AgentService/Join", Buffer.from([0x0a, 0x03, 0x61, 0x62, 0x63]));
    expect(join?.code).not.toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(join?.code).not.toBe(grpc.status.OK);
  }, 60_000);
});
