// Node certificates on open connections, over real gRPC against a real scheduler process whose
// node certificates live CERT_LIFETIME_MS (DISTX_NODE_CERT_LIFETIME_MS). TLS checks a
// certificate's dates only at the handshake, and an HTTP/2 connection outlives it: the scheduler
// must end a session when the certificate that opened it expires, and refuse every later call on
// that connection. A certificate the TLS check refused (another CA, expired) or one that names no
// node is answered with what is wrong with it, not "no credentials".
import { readFileSync } from "node:fs";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageVersion } from "../../../common/version.js";
import { CHANNEL_OPTIONS, v1 } from "../../../common/proto.js";
import { secureChannel, type TlsMaterial } from "../../../common/secure-channel.js";
import type { AgentServiceGrpcClient } from "../../../common/types.js";
import { certInfo, createCa, createCsr, signNodeCsr } from "../../../scheduler/auth/pki.js";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";
import { sleep } from "../../helpers/services.js";

const CERT_LIFETIME_MS = 8000;
const ISO = "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z";

let t: TestCluster;
let caPem: Buffer;
const stubs: AgentServiceGrpcClient[] = [];

function agentStub(material: TlsMaterial): AgentServiceGrpcClient {
  const tls = secureChannel(t.address, material);
  const stub = new (v1().AgentService)(t.address, tls.credentials, { ...CHANNEL_OPTIONS, ...tls.options }) as unknown as AgentServiceGrpcClient;
  stubs.push(stub);
  return stub;
}

const unary = <Res>(fn: (cb: (err: grpc.ServiceError | null, res?: Res) => void) => void): Promise<Res> =>
  new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res as Res))));

/** The status a call ended with (OK when it answered). */
const statusOf = (p: Promise<unknown>): Promise<{ code: grpc.status; details: string }> =>
  p.then(
    () => ({ code: grpc.status.OK, details: "" }),
    (err: grpc.ServiceError) => ({ code: err.code, details: err.details }),
  );

const register = (stub: AgentServiceGrpcClient) =>
  unary((cb) =>
    stub.Register(
      {
        profile: { hostname: "expiry", platform: "linux", arch: "x64", cpu: { model: "x", logicalCores: 2, physicalCores: 2, simd: [] }, memoryBytes: String(1 << 30), gpus: [], workers: 1, labels: {}, kernelKinds: ["KERNEL_KIND_WASM"] },
        agentVersion: packageVersion(),
      },
      { deadline: Date.now() + 5000 },
      cb,
    ),
  );

/** A node certificate from the cluster's own CA (read from its data dir), for `nodeId` and `lifetimeMs`. */
async function clusterCert(nodeId: string, lifetimeMs: number): Promise<TlsMaterial> {
  const pki = path.join(t.cluster.dataDir, "pki");
  const { csrPem, keyPem } = await createCsr();
  const { certPem } = await signNodeCsr(readFileSync(path.join(pki, "ca.crt"), "utf8"), readFileSync(path.join(pki, "ca.key"), "utf8"), csrPem, nodeId, lifetimeMs);
  return { ca: caPem, key: Buffer.from(keyPem), cert: Buffer.from(certPem) };
}

/** Joins with a join token: a real node identity, its certificate living CERT_LIFETIME_MS. */
async function joinNode(): Promise<{ nodeId: string; material: TlsMaterial; notAfterMs: number }> {
  const { token } = await t.client.createJoinToken({ uses: 1 });
  const { csrPem, keyPem } = await createCsr();
  const joined = await unary<{ nodeId: string; certificatePem: string }>((cb) => agentStub({ ca: caPem }).Join({ joinToken: token, csrPem }, cb));
  return { nodeId: joined.nodeId, material: { ca: caPem, key: Buffer.from(keyPem), cert: Buffer.from(joined.certificatePem) }, notAfterMs: certInfo(joined.certificatePem).notAfterMs };
}

beforeAll(async () => {
  t = await startTestCluster("cert-expiry", { agents: 0, env: { DISTX_NODE_CERT_LIFETIME_MS: String(CERT_LIFETIME_MS) } });
  caPem = readFileSync(t.cluster.credentialFiles().caFile);
}, 60_000);

afterAll(async () => {
  for (const s of stubs) s.close();
  await t?.stop();
});

describe("a node certificate that expires on an open connection", () => {
  it("ends the session it opened at its expiry, and refuses every later call on that connection", async () => {
    const node = await joinNode();
    const stub = agentStub(node.material);
    await register(stub);
    const session = stub.Session() as unknown as grpc.ClientDuplexStream<object, object>;
    session.on("data", () => undefined);
    const ended = new Promise<{ atMs: number; err: grpc.ServiceError }>((resolve) => session.on("error", (err: grpc.ServiceError) => resolve({ atMs: Date.now(), err })));
    session.write({ hello: { nodeId: node.nodeId, agentVersion: packageVersion() } });
    // Heartbeats keep it READY until then.
    const beat = setInterval(() => session.write({ heartbeat: { draining: false, backingOff: "", giveBack: false } }), 200);
    try {
      await sleep(1000);
      expect((await t.client.listNodes(true)).find((n) => n.nodeId === node.nodeId)?.state).toBe("NODE_STATE_READY");
      const { atMs, err } = await ended;
      expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(err.details).toMatch(new RegExp(`^the node certificate of ${node.nodeId} expired at ${ISO}; reconnect with the renewed certificate$`));
      // At its expiry: not before (the certificate was good until then), and promptly after.
      expect(atMs).toBeGreaterThanOrEqual(node.notAfterMs - 50);
      expect(atMs - node.notAfterMs).toBeLessThan(1500);
    } finally {
      clearInterval(beat);
    }

    // The same channel, its connection still open (the handshake was made with the then-good
    // certificate): each agent RPC is refused by the per-call check, named as such.
    const onOpenConnection = new RegExp(`the node certificate of ${node.nodeId} expired at ${ISO}; reconnect with the renewed certificate`);
    const kernel = await statusOf(unary((cb) => stub.FetchKernel({ kernelId: "0".repeat(64) }, { deadline: Date.now() + 5000 }, cb)));
    expect(kernel).toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: expect.stringMatching(onOpenConnection) });
    const blob = await statusOf(
      new Promise((resolve, reject) => {
        const call = stub.FetchBlob({ sha256: "0".repeat(64), jobId: "j", taskIndex: 0 }, { deadline: Date.now() + 5000 });
        call.on("data", () => undefined);
        call.on("error", reject);
        call.on("end", resolve);
      }),
    );
    expect(blob).toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: expect.stringMatching(onOpenConnection) });
    const upload = await statusOf(
      new Promise((resolve, reject) => {
        const call = stub.UploadOutput({ deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null, res?: unknown) => (err ? reject(err) : resolve(res)));
        call.end();
      }),
    );
    expect(upload).toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: expect.stringMatching(onOpenConnection) });
    expect(await statusOf(register(stub))).toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: expect.stringMatching(onOpenConnection) });

    // A new connection with it fails the TLS check, and is told so (not "no credentials").
    const fresh = await statusOf(register(agentStub(node.material)));
    expect(fresh.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(fresh.details).toMatch(new RegExp(`^the node certificate of ${node.nodeId} expired at ${ISO}: an agent renews it`));
  }, 30_000);
});

describe("Register with a certificate the scheduler cannot accept says what is wrong with it", () => {
  it("another cluster's CA", async () => {
    const other = await createCa("another cluster");
    const { csrPem, keyPem } = await createCsr();
    const { certPem } = await signNodeCsr(other.certPem, other.keyPem, csrPem, "node-0123abcd");
    const r = await statusOf(register(agentStub({ ca: caPem, key: Buffer.from(keyPem), cert: Buffer.from(certPem) })));
    expect(r.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(r.details).toMatch(/^the node certificate of node-0123abcd is not issued by this cluster's CA/);
    expect(r.details).not.toMatch(/no credentials|BEGIN/);
  });

  it("expired", async () => {
    const material = await clusterCert("node-0badc0de", 1);
    await sleep(1100); // past its notAfter, at the second the TLS check counts in
    const r = await statusOf(register(agentStub(material)));
    expect(r.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(r.details).toMatch(new RegExp(`^the node certificate of node-0badc0de expired at ${ISO}`));
  });

  it("not a node certificate", async () => {
    const r = await statusOf(register(agentStub(await clusterCert("not-a-node-id", 60_000))));
    expect(r.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(r.details).toBe("the client certificate is issued by this cluster's CA but is not a node certificate (no distx-node identity)");
  });

  it("no certificate and no token: still the 'no credentials' answer", async () => {
    const r = await statusOf(register(agentStub({ ca: caPem })));
    expect(r.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(r.details).toMatch(/^no credentials: /);
  });
});
