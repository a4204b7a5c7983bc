// CA rotation without downtime, end to end with real gRPC over TLS on loopback: a running cluster
// (scheduler and agent processes) goes through `distx ca rotate` and `distx ca retire-old` while
// it keeps running jobs. During the grace period both CAs are trusted and renewal moves the agent
// to the new CA; after retire-old the scheduler serves a certificate from the new CA and anything
// that only has the old one (a client's CA file, a node certificate) is refused.
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageVersion } from "../../../common/version.js";
import { DistributeXClient } from "../../../client/index.js";
import { cliEntry, LocalCluster } from "../../../cli/local-cluster.js";
import { CHANNEL_OPTIONS, v1 } from "../../../common/proto.js";
import { repoRoot } from "../../../common/paths.js";
import { secureChannel, type TlsMaterial } from "../../../common/secure-channel.js";
import type { AgentServiceGrpcClient } from "../../../common/types.js";
import { createCsr, splitPem } from "../../../scheduler/auth/pki.js";
import { fixtureKernel } from "../../helpers/fixtures.js";
import { until } from "../../helpers/services.js";

const run = promisify(execFile);
/** Short node certificates, so the agent renews (at 2/3) within the test: every 16 s. */
const CERT_LIFETIME_MS = 24_000;

let cluster: LocalCluster;
let dataDir: string;
let token: string;

beforeAll(async () => {
  cluster = new LocalCluster({
    agents: 1,
    workersPerAgent: 1,
    logs: path.join(repoRoot(), "test-output", "logs", `ca-rotation-${Date.now()}`),
    schedulerArgs: ["--heartbeat-interval-ms", "200", "--agent-timeout-ms", "3000", "--drain-grace-ms", "0"],
    agentArgs: () => ["--no-calibrate", "--gpu", "off", "--labels", "role=real"],
    env: { DISTX_NODE_CERT_LIFETIME_MS: String(CERT_LIFETIME_MS) },
  });
  await cluster.start();
  dataDir = path.dirname(path.dirname(cluster.credentialFiles().caFile));
  token = cluster.adminToken;
}, 60_000);

afterAll(async () => {
  await cluster?.stop(3000);
});

const caFile = () => readFileSync(cluster.credentialFiles().caFile);
const clientWith = (ca: Buffer) => new DistributeXClient(cluster.address, { ca, token, timeoutMs: 5000, retry: false });
const schedulerLog = () => readFileSync(path.join(cluster.logDir!, "scheduler.log"), "utf8");
const agentLog = () => readFileSync(path.join(cluster.logDir!, "agent-0.log"), "utf8");
const count = (text: string, event: string) => text.split(`"event":"${event}"`).length - 1;
const issuedBy = (certPem: string, caPem: string) => new X509Certificate(certPem).checkIssued(new X509Certificate(caPem));

/** The real agent's current node certificate (its identity folder under the cluster data dir). */
function agentCert(): string {
  const agents = path.join(dataDir, "agents");
  const [dir] = readdirSync(agents);
  return readFileSync(path.join(agents, dir!, "agent", "node.crt"), "utf8");
}

function agentStub(material: TlsMaterial): AgentServiceGrpcClient {
  const tls = secureChannel(cluster.address, material);
  return new (v1().AgentService)(cluster.address, tls.credentials, { ...CHANNEL_OPTIONS, ...tls.options }) as unknown as AgentServiceGrpcClient;
}

const unary = <Res>(fn: (cb: (err: grpc.ServiceError | null, res?: Res) => void) => void): Promise<Res> =>
  new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res as Res))));

const profile = { hostname: "x", platform: "linux", arch: "x64", cpu: { model: "x", logicalCores: 1, physicalCores: 1, simd: [] }, memoryBytes: String(1 << 30), gpus: [], workers: 1, labels: { role: "other" }, kernelKinds: ["KERNEL_KIND_WASM" as const] };

async function joinNode(client: DistributeXClient, ca: Buffer): Promise<{ nodeId: string; keyPem: string; certPem: string; caPem: string }> {
  const { token: joinToken } = await client.createJoinToken({ uses: 1 });
  const { csrPem, keyPem } = await createCsr();
  const boot = agentStub({ ca });
  const joined = await unary<{ nodeId: string; certificatePem: string; caPem: string }>((cb) => boot.Join({ joinToken, csrPem }, cb));
  boot.close();
  return { nodeId: joined.nodeId, keyPem, certPem: joined.certificatePem, caPem: joined.caPem };
}

async function runsOnTheAgent(client: DistributeXClient, name: string): Promise<void> {
  // A kernel the agent has not seen: it must fetch it, on a connection of its own.
  const { kernelId } = await client.registerKernel(await fixtureKernel("echo"), { name });
  const input = Buffer.from(name.padEnd(8, ".").slice(0, 8));
  const { jobId } = await client.submitJob({ kernelId, inputs: [input], resources: { nodeSelector: { role: "real" } }, skipResultCache: true });
  expect((await client.waitForJob(jobId)).state).toBe("JOB_STATE_SUCCEEDED");
  expect(Buffer.from((await client.getResults(jobId))[0]!.output).toString()).toBe(input.toString());
}

describe("CA rotation without downtime", () => {
  it("rotate: both CAs trusted, renewal moves the agent over; retire-old: only the new CA, the old one refused", async () => {
    const oldCa = caFile();
    const admin = clientWith(oldCa);
    await runsOnTheAgent(admin, "before");
    // A node that joined before the rotation and will not renew.
    const stale = await joinNode(admin, oldCa);
    const staleStub = () => agentStub({ ca: oldCa, key: Buffer.from(stale.keyPem), cert: Buffer.from(stale.certPem) });

    const rotated = await run(process.execPath, [cliEntry(), "ca", "rotate", "--data-dir", dataDir]);
    expect(rotated.stdout).toMatch(/new CA: +sha256:/);
    await until("the scheduler to reload its PKI", async () => count(schedulerLog(), "pki_reloaded") >= 1, 10_000);
    const bundle = caFile().toString();
    const [newCa, oldAgain] = splitPem(bundle);
    expect(oldAgain!.trim()).toBe(oldCa.toString().trim());
    // A second rotation while one is under way is refused, with a reason.
    const again = await run(process.execPath, [cliEntry(), "ca", "rotate", "--data-dir", dataDir]).catch((e: { stderr: string }) => e);
    expect((again as { stderr: string }).stderr).toMatch(/already under way/);

    // Grace period: clients holding only the old CA still work (the served certificate is still
    // the old CA's); a node certificate from the old CA is still accepted; a new join gets a
    // certificate from the new CA and both CAs.
    expect((await admin.listNodes()).length).toBeGreaterThanOrEqual(1);
    const s1 = staleStub();
    await unary((cb) => s1.Register({ profile, agentVersion: packageVersion() }, cb));
    s1.close();
    const fresh = await joinNode(admin, oldCa);
    expect(issuedBy(fresh.certPem, newCa!)).toBe(true);
    expect(splitPem(fresh.caPem)).toHaveLength(2);

    // The agent's next renewal brings a certificate from the new CA, and it keeps working.
    await until("the agent to renew onto the new CA", async () => issuedBy(agentCert(), newCa!), 30_000, 300);
    await runsOnTheAgent(admin, "grace");

    const retired = await run(process.execPath, [cliEntry(), "ca", "retire-old", "--data-dir", dataDir]);
    expect(retired.stdout).toMatch(/retired CA: +sha256:/);
    await until("the scheduler to reload its PKI again", async () => count(schedulerLog(), "pki_reloaded") >= 2, 10_000);
    expect(splitPem(caFile().toString())).toHaveLength(1);

    // After retire-old: a client with only the old CA cannot connect any more; one with ca.crt can.
    const oldOnly = clientWith(oldCa);
    await expect(oldOnly.listNodes()).rejects.toMatchObject({ codeName: "UNAVAILABLE" });
    oldOnly.close();
    const current = clientWith(caFile());
    expect((await current.listNodes()).length).toBeGreaterThanOrEqual(1);
    // The node certificate from the old CA (still within its validity) is refused now.
    expect(Date.now()).toBeLessThan(Date.parse(new X509Certificate(stale.certPem).validTo));
    const s2 = agentStub({ ca: caFile(), key: Buffer.from(stale.keyPem), cert: Buffer.from(stale.certPem) });
    const refused = await unary((cb) => s2.Register({ profile, agentVersion: packageVersion() }, cb)).catch((e: grpc.ServiceError) => e);
    expect((refused as grpc.ServiceError).code).toBe(grpc.status.UNAUTHENTICATED);
    s2.close();
    // The agent (the new CA's certificate, trusting both) connects afresh after its next renewal and runs jobs.
    const renewals = count(agentLog(), "cert_renewed");
    await until("another renewal of the agent", async () => count(agentLog(), "cert_renewed") > renewals, 30_000, 300);
    await runsOnTheAgent(current, "after");
    expect(issuedBy(agentCert(), newCa!)).toBe(true);
    current.close();
    admin.close();
  }, 120_000);
});
