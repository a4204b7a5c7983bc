// Every RPC of distributex.v1.DistributeX × every kind of caller, over real gRPC against a
// real scheduler process: the status each cell must get. The RPCs are enumerated from the loaded
// service definition, so an RPC added without a row here (and a policy in
// scheduler/auth/policy.ts) fails this test.
//
// Columns: no credentials, a token of another tenant ("wrong tenant": a submit token of t2 acting
// on t1's job/kernel), read/submit tokens of t1, the admin token, a revoked and an expired token,
// and an agent's certificate used as a client (a node that joined through AgentService.Join with
// a join token, calling over mutual TLS with the certificate it was issued, and no token).
import { mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "../../../agent/identity.js";
import { DistributeXClient } from "../../../client/index.js";
import { agentConfigSchema, loadConfig } from "../../../common/config.js";
import { createLogger } from "../../../common/logger.js";
import { builtKernelsDir } from "../../../common/paths.js";
import { secureChannel } from "../../../common/secure-channel.js";
import { v1 } from "../../../common/proto.js";
import { DISTRIBUTEX_POLICY } from "../../../scheduler/auth/policy.js";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";

const { OK, UNAUTHENTICATED: UNAUTH, PERMISSION_DENIED: DENIED, NOT_FOUND } = grpc.status;

type Column = "none" | "wrongTenant" | "read" | "submit" | "admin" | "revoked" | "expired" | "agentCert";
const COLUMNS: Column[] = ["none", "wrongTenant", "read", "submit", "admin", "revoked", "expired", "agentCert"];

/**
 * The expected status of every cell. Another tenant's job or kernel answers NOT_FOUND, exactly
 * like one that does not exist (its existence is not revealed); lists are filtered instead.
 */
const EXPECTED: Record<string, Record<Column, grpc.status>> = {
  RegisterKernel: { none: UNAUTH, wrongTenant: OK, read: DENIED, submit: OK, admin: OK, revoked: UNAUTH, expired: UNAUTH, agentCert: DENIED },
  GetKernel: { none: UNAUTH, wrongTenant: NOT_FOUND, read: OK, submit: OK, admin: OK, revoked: UNAUTH, expired: UNAUTH, agentCert: DENIED },
  DeleteKernel: { none: UNAUTH, wrongTenant: NOT_FOUND, read: DENIED, submit: OK, admin: OK, revoked: UNAUTH, expired: UNAUTH, agentCert: DENIED },
  SubmitJob: { none: UNAUTH, wrongTenant: NOT_FOUND, read: DENIED, submit: OK, admin: OK, revoked: UNAUTH, expired: UNAUTH, agentCert: DENIED },
  SubmitJobStream: { none: UNAUTH, wrongTenant: NOT_FOUND, read: DENIED, submit: OK, admin: OK, revoked: UNAUTH, expired: UNAUTH, agentCert: DENIED },
  GetJob: { none: UNAUTH, wrongTenant: NOT_FOUND, read: OK, submit: OK, admin: OK, revoked: UNAUTH, expired: UNAUTH, agentCert: DENIED },
  ListJobs: { none: UNAUTH, wrongTenant: OK, read: OK, submit: OK, admin: OK, revoked: UNAUTH, expired: UNAUTH, agentCert: DENIED },
  WatchJob: { none: UNAUTH, wrongTenant: NOT_FOUND, read: DENIED, submit: OK, admin: OK, revoked: UNAUTH, expired: UNAUTH, agentCert: DENIED },
  RunJob: { none: UNAUTH, wrongTenant: NOT_FOUND, read: DENIED, submit: OK, admin: OK, revoked: UNAUTH, expired: UNAUTH, agentCert: DENIED },
  CancelJob: { none: UNAUTH, wrongTenant: NOT_FOUND, read: DENIED, submit: OK, admin: OK, revoked: UNAUTH, expired: UNAUTH, agentCert: DENIED },
  GetResults: { none: UNAUTH, wrongTenant: NOT_FOUND, read: DENIED, submit: OK, admin: OK, revoked: UNAUTH, expired: UNAUTH, agentCert: DENIED },
  // The fixture job never runs (no agents): past authorization, its task has no output by reference yet.
  GetResultOutput: { none: UNAUTH, wrongTenant: NOT_FOUND, read: DENIED, submit: NOT_FOUND, admin: NOT_FOUND, revoked: UNAUTH, expired: UNAUTH, agentCert: DENIED },
  ListNodes: { none: UNAUTH, wrongTenant: DENIED, read: DENIED, submit: DENIED, admin: OK, revoked: UNAUTH, expired: UNAUTH, agentCert: DENIED },
  WatchAlerts: { none: UNAUTH, wrongTenant: DENIED, read: DENIED, submit: DENIED, admin: OK, revoked: UNAUTH, expired: UNAUTH, agentCert: DENIED },
  CreateToken: { none: UNAUTH, wrongTenant: DENIED, read: DENIED, submit: DENIED, admin: OK, revoked: UNAUTH, expired: UNAUTH, agentCert: DENIED },
  ListTokens: { none: UNAUTH, wrongTenant: DENIED, read: DENIED, submit: DENIED, admin: OK, revoked: UNAUTH, expired: UNAUTH, agentCert: DENIED },
  RevokeToken: { none: UNAUTH, wrongTenant: DENIED, read: DENIED, submit: DENIED, admin: OK, revoked: UNAUTH, expired: UNAUTH, agentCert: DENIED },
  CreateJoinToken: { none: UNAUTH, wrongTenant: DENIED, read: DENIED, submit: DENIED, admin: OK, revoked: UNAUTH, expired: UNAUTH, agentCert: DENIED },
  RemoveNode: { none: UNAUTH, wrongTenant: DENIED, read: DENIED, submit: DENIED, admin: OK, revoked: UNAUTH, expired: UNAUTH, agentCert: DENIED },
};

type RawClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;
let t: TestCluster;
let raw: RawClient;
/** DistributeX over mTLS with a real agent's node certificate (and no token). */
let asAgent: RawClient;
let agentNodeId = "";
const tokens = {} as Record<Exclude<Column, "none" | "agentCert">, string>;
let t1: DistributeXClient; // t1's submit token: makes the fixtures the cells act on
let saxpy: Buffer;
let kernelId = "";
let jobId = "";
let variant = 0;

/** The kernel's bytes with a custom section: valid, and a different sha256 for each n. */
/** A token is `dx<kind>_<id>_<secret>`; the secret is base64url, so it may itself hold "_". */
function secretOf(token: string): string {
  return token.split("_").slice(2).join("_");
}

function kernelVariant(n: number): Buffer {
  const name = Buffer.from(`distx-test-${n}`);
  const body = Buffer.concat([Buffer.from([name.length]), name]);
  return Buffer.concat([saxpy, Buffer.from([0, body.length]), body]);
}

/** A fresh request for each cell (a cell that cancels, deletes or revokes gets its own target). */
const REQUESTS: Record<string, () => Promise<object>> = {
  RegisterKernel: async () => ({ module: kernelVariant(1000 + variant++), name: "matrix", kind: "KERNEL_KIND_WASM" }),
  GetKernel: async () => ({ kernelId }),
  // Named tenant: the admin deletes t1's registration; a t1 token may name its own tenant.
  DeleteKernel: async () => ({ kernelId: (await t1.registerKernel(kernelVariant(variant++))).kernelId, tenant: "t1" }),
  SubmitJob: async () => ({ kernelId, tasks: [{ data: Buffer.alloc(12) }] }),
  // Client streaming: the messages of the stream, in order.
  SubmitJobStream: async () => [{ header: { kernelId, tasks: [] } }, { tasks: { items: [{ data: Buffer.alloc(12) }] } }],
  GetJob: async () => ({ jobId }),
  ListJobs: async () => ({ limit: 1000 }),
  WatchJob: async () => ({ jobId }),
  RunJob: async () => ({ kernelId, tasks: [{ data: Buffer.alloc(12) }] }),
  CancelJob: async () => ({ jobId: (await t1.submitJob({ kernelId, inputs: [Buffer.alloc(12)] })).jobId }),
  GetResults: async () => ({ jobId, offset: 0, limit: 10 }),
  GetResultOutput: async () => ({ jobId, taskIndex: 0 }),
  ListNodes: async () => ({ includeDown: true }),
  WatchAlerts: async () => ({ includeActive: true }),
  CreateToken: async () => ({ role: "read", tenant: "t1", ttlMs: 0, description: "matrix" }),
  ListTokens: async () => ({ includeRevoked: true }),
  RevokeToken: async () => ({ id: (await t.client.createToken({ role: "read", tenant: "t1", description: "to revoke" })).info.id }),
  CreateJoinToken: async () => ({ ttlMs: 60_000, uses: 1, description: "matrix" }),
  // A node id nobody holds: removing it only denies it from now on.
  RemoveNode: async () => ({ nodeId: `node-${(0x10000000 + variant++).toString(16)}` }),
};

const metadataFor = (token: string | undefined) => {
  const md = new grpc.Metadata();
  if (token) md.set("authorization", `Bearer ${token}`);
  return md;
};

/** Calls `rpc` as the caller of `token`; resolves with the status code and, for OK, the reply. */
function callAs(rpc: string, req: object, token: string | undefined, via: RawClient = raw): Promise<{ code: grpc.status; details: string; reply?: unknown }> {
  const def = v1().DistributeX.service[rpc]!;
  const md = metadataFor(token);
  if (def.requestStream) {
    return new Promise((resolve) => {
      const call = via[rpc]!(md, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, reply: unknown) =>
        resolve(err ? { code: err.code, details: err.details } : { code: OK, details: "", reply }),
      ) as grpc.ClientWritableStream<object>;
      for (const m of req as object[]) call.write(m);
      call.end();
    });
  }
  if (!def.responseStream) {
    return new Promise((resolve) =>
      via[rpc]!(req, md, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, reply: unknown) =>
        resolve(err ? { code: err.code, details: err.details } : { code: OK, details: "", reply }),
      ),
    );
  }
  // A stream is OK once it delivers a message, or sends its headers and no error follows.
  return new Promise((resolve) => {
    const call = via[rpc]!(req, md) as grpc.ClientReadableStream<unknown>;
    let settled = false;
    const done = (r: { code: grpc.status; details: string }) => {
      if (settled) return;
      settled = true;
      resolve(r);
      call.cancel();
    };
    call.on("data", () => done({ code: OK, details: "" }));
    call.on("error", (e: grpc.ServiceError) => done({ code: e.code, details: e.details }));
    call.on("metadata", () => setTimeout(() => done({ code: OK, details: "" }), 300));
  });
}

beforeAll(async () => {
  t = await startTestCluster("rpc-matrix", { agents: 0 });
  const Ctor = v1().DistributeX;
  const caFile = t.cluster.credentialFiles().caFile;
  const tls = secureChannel(t.address, { ca: readFileSync(caFile) });
  raw = new Ctor(t.address, tls.credentials, tls.options) as unknown as typeof raw;
  saxpy = readFileSync(path.join(builtKernelsDir(), "saxpy.wasm"));
  const admin = t.client;
  tokens.admin = t.adminToken;
  tokens.read = (await admin.createToken({ role: "read", tenant: "t1" })).token;
  tokens.submit = (await admin.createToken({ role: "submit", tenant: "t1" })).token;
  tokens.wrongTenant = (await admin.createToken({ role: "submit", tenant: "t2" })).token;
  const revoked = await admin.createToken({ role: "admin", tenant: "t1", description: "revoked" });
  await admin.revokeToken(revoked.info.id);
  tokens.revoked = revoked.token;
  tokens.expired = (await admin.createToken({ role: "admin", tenant: "t1", ttlMs: 1 })).token;
  t1 = new DistributeXClient(t.address, { token: tokens.submit });
  kernelId = (await t1.registerKernel(saxpy, { name: "saxpy" })).kernelId;
  // The admin's jobs run in its own tenant, so it holds the kernel there too.
  await admin.registerKernel(saxpy, { name: "saxpy" });
  // No agents: the job stays pending, so it can be watched, read and cancelled.
  jobId = (await t1.submitJob({ kernelId, inputs: [Buffer.alloc(12)] })).jobId;
  // A real agent identity: the join flow an agent runs (CSR, one-use join token, CA checked).
  const joinToken = (await admin.createJoinToken({ uses: 1, description: "matrix agent" })).token;
  const agentConfig = loadConfig(agentConfigSchema, {
    section: "agent",
    env: {},
    flags: { scheduler: t.address, joinToken, ca: caFile, dataDir: mkdtempSync(path.join(os.tmpdir(), "distx-matrix-agent-")) },
  });
  const identity = await join(agentConfig, createLogger("agent", "silent"));
  agentNodeId = identity.nodeId;
  const mtls = secureChannel(t.address, { ca: Buffer.from(identity.caPem), key: Buffer.from(identity.keyPem), cert: Buffer.from(identity.certPem) });
  asAgent = new Ctor(t.address, mtls.credentials, mtls.options) as unknown as RawClient;
  await new Promise((r) => setTimeout(r, 5)); // the 1 ms token has expired
}, 60_000);

afterAll(async () => {
  t1?.close();
  raw?.close();
  asAgent?.close();
  await t?.stop();
});

describe("RPC × caller matrix", () => {
  it("has a row here and a policy for every RPC the service defines, and nothing else", () => {
    const rpcs = Object.keys(v1().DistributeX.service).sort();
    expect(Object.keys(EXPECTED).sort()).toEqual(rpcs);
    expect(Object.keys(DISTRIBUTEX_POLICY).sort()).toEqual(rpcs);
    expect(Object.keys(REQUESTS).sort()).toEqual(rpcs);
  });

  const cells = Object.entries(EXPECTED).flatMap(([rpc, row]) =>
    COLUMNS.filter((c) => c !== "agentCert").map((column) => [rpc, column, grpc.status[row[column]], row[column]] as const),
  );
  it.each(cells)("%s as %s → %s", async (rpc, column, _name, expected) => {
    const req = await REQUESTS[rpc]!();
    const token = column === "none" ? undefined : tokens[column];
    const r = await callAs(rpc, req, token);
    expect({ code: grpc.status[r.code], details: r.details }).toMatchObject({ code: grpc.status[expected] });
    // A refusal never echoes the secret.
    if (token) expect(r.details).not.toContain(secretOf(token));
    if (expected === UNAUTH && column === "none") expect(r.details).toMatch(/no credentials: pass --token or DISTX_TOKEN/);
    if (expected === UNAUTH && column === "revoked") expect(r.details).toMatch(/token [0-9a-f]{16} was revoked/);
    if (expected === UNAUTH && column === "expired") expect(r.details).toMatch(/token [0-9a-f]{16} expired at/);
    if (expected === DENIED) expect(r.details).toMatch(new RegExp(`${rpc} needs role (submit|admin) or higher; token [0-9a-f]{16} has role (read|submit)`));
    if (expected === NOT_FOUND && column === "wrongTenant") expect(r.details).toMatch(/^(no job job-|unknown kernel )/);
    else if (expected === NOT_FOUND) expect(r.details).toMatch(/^(no job job-|unknown kernel |task 0 of job job-\S+ has no output stored by reference)/);
  });

  // The agent column: the certificate is verified by TLS and names a node, so the caller is that
  // node, and a node is never a client, whatever the RPC.
  it.each(Object.keys(EXPECTED).map((rpc) => [rpc, grpc.status[EXPECTED[rpc]!.agentCert], EXPECTED[rpc]!.agentCert] as const))(
    "%s as an agent certificate over mTLS → %s",
    async (rpc, _name, expected) => {
      const r = await callAs(rpc, await REQUESTS[rpc]!(), undefined, asAgent);
      expect({ code: grpc.status[r.code], details: r.details }).toMatchObject({ code: grpc.status[expected] });
      expect(r.details).toMatch(new RegExp(`${rpc} is a client RPC; an agent's node certificate \\(node ${agentNodeId}\\) cannot call it`));
    },
  );

  it("an agent certificate stays the node's identity even with an admin token in the metadata", async () => {
    const r = await callAs("ListNodes", { includeDown: true }, tokens.admin, asAgent);
    expect(grpc.status[r.code]).toBe("PERMISSION_DENIED");
    expect(r.details).toMatch(/agent's node certificate .* cannot call it/);
  });

  it("lists only the caller's tenant's jobs; admin sees every tenant's, each marked with its tenant", async () => {
    const t2 = new DistributeXClient(t.address, { token: tokens.wrongTenant });
    await t2.registerKernel(saxpy);
    const t2Job = (await t2.submitJob({ kernelId, inputs: [Buffer.alloc(12)] })).jobId;
    t2.close();
    const other = await callAs("ListJobs", { limit: 1000 }, tokens.wrongTenant);
    const own = await callAs("ListJobs", { limit: 1000 }, tokens.read);
    const all = await callAs("ListJobs", { limit: 1000 }, tokens.admin);
    const ids = (r: { reply?: unknown }) => (r.reply as { jobs: { jobId: string; tenant: string }[] }).jobs;
    expect(ids(other).map((j) => j.jobId)).not.toContain(jobId);
    expect(ids(other).map((j) => j.jobId)).toContain(t2Job);
    expect(ids(other).every((j) => j.tenant === "t2")).toBe(true);
    expect(ids(own).map((j) => j.jobId)).not.toContain(t2Job);
    expect(ids(own).map((j) => j.jobId)).toContain(jobId);
    expect(ids(own).every((j) => j.tenant === "t1")).toBe(true);
    expect(ids(all).map((j) => j.tenant)).toEqual(expect.arrayContaining(["t1", "t2", "default"]));
  });

  it("lists tokens without their secrets, revokes at once, and a wrong secret is refused", async () => {
    const listed = (await t.client.listTokens(true)).find((k) => tokens.submit.includes(k.id))!;
    expect(listed).toMatchObject({ kind: "api", role: "submit", tenant: "t1", revokedAtMs: 0, last4: tokens.submit.slice(-4) });
    expect(JSON.stringify(await t.client.listTokens(true))).not.toContain(secretOf(tokens.submit));
    const forged = tokens.submit.slice(0, -4) + (tokens.submit.endsWith("AAAA") ? "BBBB" : "AAAA");
    const r = await callAs("GetJob", { jobId }, forged);
    expect(r.code).toBe(UNAUTH);
    expect(r.details).toMatch(/wrong secret/);
    const victim = await t.client.createToken({ role: "read", tenant: "t1" });
    expect((await callAs("GetJob", { jobId }, victim.token)).code).toBe(OK);
    await t.client.revokeToken(victim.info.id);
    expect((await callAs("GetJob", { jobId }, victim.token)).code).toBe(UNAUTH);
  });

  it("takes the token the way grpcurl and other clients send it, and refuses a malformed header", async () => {
    const md = new grpc.Metadata();
    md.set("authorization", `bearer   ${tokens.read}`);
    const ok = await new Promise<number>((resolve) => raw.GetJob!({ jobId }, md, (err: grpc.ServiceError | null) => resolve(err ? err.code : OK)));
    expect(ok).toBe(OK);
    const bad = await callAs("GetJob", { jobId }, undefined).then(() =>
      new Promise<grpc.ServiceError>((resolve) => {
        const m = new grpc.Metadata();
        m.set("authorization", tokens.read);
        raw.GetJob!({ jobId }, m, (err: grpc.ServiceError) => resolve(err));
      }),
    );
    expect(bad.code).toBe(UNAUTH);
    expect(bad.details).toMatch(/must be `Bearer <token>`/);
    expect(bad.details).not.toContain(tokens.read);
  });
});
