// mTLS, node identity and the results wall, against a real local cluster (separate processes,
// real gRPC over TLS on loopback), with fake agents built from the public contract as an
// attacker on the same network would build them.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageVersion } from "../../../common/version.js";
import { DistributeXClient } from "../../../client/index.js";
import { LocalCluster } from "../../../cli/local-cluster.js";
import { CHANNEL_OPTIONS, v1 } from "../../../common/proto.js";
import { repoRoot } from "../../../common/paths.js";
import { secureChannel, type TlsMaterial } from "../../../common/secure-channel.js";
import type { AgentServiceGrpcClient } from "../../../common/types.js";
import { createCsr, createCa } from "../../../scheduler/auth/pki.js";
import { fixtureKernel } from "../../helpers/fixtures.js";

const run = promisify(execFile);
const CERT_LIFETIME_MS = 9000;

let cluster: LocalCluster;
let client: DistributeXClient;
let caPem: Buffer;

beforeAll(async () => {
  cluster = new LocalCluster({
    agents: 1,
    workersPerAgent: 1,
    logs: path.join(repoRoot(), "test-output", "logs", `security-tls-${Date.now()}`),
    schedulerArgs: ["--heartbeat-interval-ms", "200", "--agent-timeout-ms", "2000", "--drain-grace-ms", "0"],
    agentArgs: () => ["--no-calibrate", "--gpu", "off", "--labels", "role=real"],
    // Short node certificates, so that renewal (at 2/3) happens within the test.
    env: { DISTX_NODE_CERT_LIFETIME_MS: String(CERT_LIFETIME_MS) },
  });
  await cluster.start();
  client = new DistributeXClient(cluster.address);
  caPem = readFileSync(cluster.credentialFiles().caFile);
}, 60_000);

afterAll(async () => {
  client?.close();
  await cluster?.stop(3000);
});

/** AgentService over TLS (mutual with a key and certificate), optionally sending call credentials too. */
function agentStub(material: TlsMaterial, callCredentials?: grpc.CallCredentials): AgentServiceGrpcClient {
  const tls = secureChannel(cluster.address, material);
  const creds = callCredentials ? grpc.credentials.combineChannelCredentials(tls.credentials, callCredentials) : tls.credentials;
  return new (v1().AgentService)(cluster.address, creds, { ...CHANNEL_OPTIONS, ...tls.options }) as unknown as AgentServiceGrpcClient;
}

function unary<Res>(fn: (cb: (err: grpc.ServiceError | null, res?: Res) => void) => void): Promise<Res> {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res as Res))));
}

const profile = (labels: Record<string, string>) => ({
  hostname: "fake",
  platform: "linux",
  arch: "x64",
  cpu: { model: "fake", logicalCores: 1, physicalCores: 1, simd: [] },
  memoryBytes: String(1 << 30),
  gpus: [],
  workers: 1,
  labels,
  kernelKinds: ["KERNEL_KIND_WASM" as const],
});

/** Joins with a fresh join token, as an attacker who got one would; returns its mTLS stub. */
async function joinFake(): Promise<{ nodeId: string; stub: AgentServiceGrpcClient; token: string }> {
  const { token } = await client.createJoinToken({ uses: 1 });
  const { csrPem, keyPem } = await createCsr();
  const bootstrap = agentStub({ ca: caPem });
  const joined = await unary<{ nodeId: string; certificatePem: string }>((cb) => bootstrap.Join({ joinToken: token, csrPem }, cb));
  bootstrap.close();
  const stub = agentStub({ ca: caPem, key: Buffer.from(keyPem), cert: Buffer.from(joined.certificatePem) });
  return { nodeId: joined.nodeId, stub, token };
}

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`http://${await cluster.adminAddress("scheduler")}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(" ").pop()) : NaN;
}

/** Opens a session and returns the first error status (or "open" if it stays open for 1 s). */
function sessionOutcome(stub: AgentServiceGrpcClient, hello: string, then?: (s: grpc.ClientDuplexStream<object, object>) => void): Promise<grpc.ServiceError | "open"> {
  return new Promise((resolve) => {
    const s = stub.Session() as unknown as grpc.ClientDuplexStream<object, object>;
    s.on("error", (e: grpc.ServiceError) => resolve(e));
    s.on("data", () => undefined);
    s.write({ hello: { nodeId: hello } });
    then?.(s);
    setTimeout(() => {
      resolve("open");
      s.cancel();
    }, 1000);
  });
}

describe("TLS on the scheduler port", () => {
  it("speaks TLS 1.3 and nothing older (openssl s_client)", async () => {
    const [host, port] = [cluster.address.replace(/:\d+$/, ""), cluster.address.replace(/^.*:/, "")];
    const sclient = (v: string) =>
      run("openssl", ["s_client", "-connect", `${host}:${port}`, v, "-CAfile", cluster.credentialFiles().caFile, "-brief"], { timeout: 10_000 }).then(
        (r) => ({ ok: true, out: r.stdout + r.stderr }),
        (e: { stdout?: string; stderr?: string }) => ({ ok: false, out: `${e.stdout}${e.stderr}` }),
      );
    const v13 = await sclient("-tls1_3");
    expect(v13.out).toMatch(/Protocol version: TLSv1\.3/);
    expect(v13.out).toMatch(/Verification: OK/);
    const v12 = await sclient("-tls1_2");
    expect(v12.ok).toBe(false);
    expect(v12.out).not.toMatch(/Protocol version: TLSv1\.2/);
  });

  it("a client without the cluster CA cannot connect", async () => {
    const plain = new DistributeXClient(cluster.address, { insecure: true, timeoutMs: 3000, retry: false });
    await expect(plain.listNodes()).rejects.toMatchObject({ codeName: "UNAVAILABLE" });
    plain.close();
    const otherCa = await createCa("some other CA");
    const wrong = new DistributeXClient(cluster.address, { ca: otherCa.certPem, token: "dxa_0000000000000000_" + "a".repeat(43), timeoutMs: 3000, retry: false });
    await expect(wrong.listNodes()).rejects.toMatchObject({ codeName: "UNAVAILABLE" });
    wrong.close();
  });

  it("a client with the CA but a bad token is UNAUTHENTICATED", async () => {
    const bad = new DistributeXClient(cluster.address, { ca: caPem, token: "dxa_0000000000000000_" + "a".repeat(43), timeoutMs: 3000 });
    await expect(bad.listNodes()).rejects.toMatchObject({ codeName: "UNAUTHENTICATED" });
    bad.close();
  });

  it("the admin HTTP port binds to 127.0.0.1 by default", async () => {
    expect(await cluster.adminAddress("scheduler")).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(await cluster.adminAddress("agent-0")).toMatch(/^127\.0\.0\.1:\d+$/);
  });
});

describe("agent identity", () => {
  it("a fake agent without a join token gets nothing", async () => {
    const anon = agentStub({ ca: caPem });
    await expect(unary((cb) => anon.Register({ profile: profile({}), agentVersion: packageVersion() }, cb))).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    await expect(unary((cb) => anon.FetchKernel({ kernelId: "0".repeat(64) }, cb))).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    const outcome = await sessionOutcome(anon, "node-00000000");
    expect(outcome).not.toBe("open");
    expect((outcome as grpc.ServiceError).code).toBe(grpc.status.UNAUTHENTICATED);
    const { csrPem } = await createCsr();
    await expect(unary((cb) => anon.Join({ joinToken: "dxj_0000000000000000_" + "a".repeat(43), csrPem }, cb))).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    // An API token is not a node identity either.
    const admin = readFileSync(cluster.credentialFiles().tokenFile, "utf8").trim();
    const withToken = agentStub(
      { ca: caPem },
      grpc.credentials.createFromMetadataGenerator((_p, done) => {
        const md = new grpc.Metadata();
        md.set("authorization", `Bearer ${admin}`);
        done(null, md);
      }),
    );
    await expect(unary((cb) => withToken.Register({ profile: profile({}), agentVersion: packageVersion() }, cb))).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    withToken.close();
    anon.close();
  });

  it("a join token cannot be used twice", async () => {
    const { token } = await client.createJoinToken({ uses: 1 });
    const boot = agentStub({ ca: caPem });
    const first = await unary<{ nodeId: string }>(async (cb) => boot.Join({ joinToken: token, csrPem: (await createCsr()).csrPem }, cb));
    expect(first.nodeId).toMatch(/^node-[0-9a-f]+$/);
    const { csrPem } = await createCsr();
    const err = await unary((cb) => boot.Join({ joinToken: token, csrPem }, cb)).catch((e: grpc.ServiceError) => e);
    expect((err as grpc.ServiceError).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((err as grpc.ServiceError).details).toMatch(/already been used/);
    boot.close();
  });

  it("a process cannot take over a real agent's node id", async () => {
    const real = (await client.listNodes()).find((n) => n.profile?.labels.role === "real" && n.state === "NODE_STATE_READY")!;
    expect(real).toBeDefined();
    const fake = await joinFake();
    const outcome = await sessionOutcome(fake.stub, real.nodeId);
    expect((outcome as grpc.ServiceError).code).toBe(grpc.status.PERMISSION_DENIED);
    expect((outcome as grpc.ServiceError).details).toMatch(new RegExp(`belongs to node ${fake.nodeId}, not ${real.nodeId}`));
    const after = (await client.listNodes()).find((n) => n.nodeId === real.nodeId)!;
    expect(after.state).toBe("NODE_STATE_READY");
    fake.stub.close();
  });

  it("an agent cannot report for another node's tasks (dropped and counted)", async () => {
    // Built first: node certificates live 9 s in this file, and an AssemblyScript build takes seconds.
    const { kernelId } = await client.registerKernel(await fixtureKernel("echo"), { name: "echo" });
    const fake = await joinFake();
    const reg = await unary<{ nodeId: string }>((cb) => fake.stub.Register({ profile: profile({ role: "fake" }), agentVersion: packageVersion() }, cb));
    expect(reg.nodeId).toBe(fake.nodeId); // the id is the certificate's, whatever the caller wants
    const before = await metric("distx_rejected_updates_total", 'reason="not_assigned"');
    const inputs = Array.from({ length: 6 }, (_, i) => Buffer.from([i + 1, i + 2, i + 3, i + 4]));
    const { jobId } = await client.submitJob({ kernelId, inputs, resources: { nodeSelector: { role: "real" } } });
    const forged = inputs.map((_, i) => ({ jobId, taskIndex: i, attempt: 1, state: "TASK_STATE_SUCCEEDED", output: Buffer.from("forged"), runMs: 1 }));
    const outcome = await sessionOutcome(fake.stub, fake.nodeId, (s) => s.write({ updates: { items: forged } }));
    expect(outcome).toBe("open");
    const job = await client.waitForJob(jobId);
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    const results = await client.getResults(jobId);
    expect(results.map((r) => Buffer.from(r.output).toString("hex"))).toEqual(inputs.map((b) => b.toString("hex")));
    expect((await metric("distx_rejected_updates_total", 'reason="not_assigned"')) - before).toBeGreaterThanOrEqual(inputs.length);
    fake.stub.close();
  });

  it("a removed node's certificate is refused", async () => {
    const fake = await joinFake();
    await unary((cb) => fake.stub.Register({ profile: profile({ role: "fake" }), agentVersion: packageVersion() }, cb));
    const { wasConnected } = await client.removeNode(fake.nodeId);
    expect(wasConnected).toBe(true);
    const err = await unary((cb) => fake.stub.Register({ profile: profile({ role: "fake" }), agentVersion: packageVersion() }, cb)).catch((e: grpc.ServiceError) => e);
    expect((err as grpc.ServiceError).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((err as grpc.ServiceError).details).toMatch(/revoked/);
    const outcome = await sessionOutcome(fake.stub, fake.nodeId);
    expect((outcome as grpc.ServiceError).code).toBe(grpc.status.UNAUTHENTICATED);
    fake.stub.close();
  });

  it("the agent renews its certificate before it expires and keeps working after the first one expired", async () => {
    const log = () => readFileSync(path.join(cluster.logDir!, "agent-0.log"), "utf8");
    const joinedAt = Date.parse(/"time":"([^"]+)"[^\n]*"event":"joined"/.exec(log())![1]!);
    // Past the first certificate's end: new calls (FetchKernel of a new kernel) need the renewed one.
    await new Promise((r) => setTimeout(r, Math.max(0, joinedAt + CERT_LIFETIME_MS + 500 - Date.now())));
    expect(log()).toMatch(/"event":"cert_renewed"/);
    const { kernelId } = await client.registerKernel(await fixtureKernel("trap"), { name: "trap-after-renewal" });
    const { jobId } = await client.submitJob({ kernelId, inputs: [Buffer.alloc(4)], maxAttempts: 1, resources: { nodeSelector: { role: "real" } } });
    const job = await client.waitForJob(jobId);
    // The kernel was fetched and run (it traps by design): the agent reached the scheduler with its new certificate.
    const [result] = await client.getResults(jobId);
    expect(job.state).toBe("JOB_STATE_FAILED");
    expect(result?.error?.code).toBe("TRAP");
  }, 30_000);
});
