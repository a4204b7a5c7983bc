// What the scheduler does with an UploadOutput already under way when the world changes under
// it (Redis state, real TLS cluster). The uploads here are made piece by piece by the test with
// the real agent's own certificate, for a task that agent really holds (a kernel that spins for
// ever), so each change can be made between two pieces:
//  - a piece lost in Redis (the upload's key evicted or flushed mid-way): the output must never be
//    kept with bytes missing; the agent is told to retry;
//  - the task ends (here: its job is cancelled) mid-upload: refused on the next piece, dropped;
//  - the node is removed (its certificate revoked) mid-upload: the upload is ended at once and dropped.
import * as grpc from "@grpc/grpc-js";
import { createHash, randomFillSync } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHANNEL_OPTIONS, v1 } from "../../../common/proto.js";
import { secureChannel } from "../../../common/secure-channel.js";
import type { AgentServiceGrpcClient } from "../../../common/types.js";
import { fixtureKernel } from "../../helpers/fixtures.js";
import { blobRig, type BlobRig } from "../../helpers/blob-rig.js";
import { MiB } from "../../helpers/outputs.js";
import { until } from "../../helpers/services.js";

let rig: BlobRig;
let c: BlobRig["c"];
let redis: BlobRig["redis"];
let prefix = "";
let agent: AgentServiceGrpcClient & grpc.Client;
let spin = "";

/** The file `name` somewhere under `dir`. */
function findFile(dir: string, name: string): string | undefined {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isFile() && e.name === name) return p;
    if (e.isDirectory()) {
      const found = findFile(p, name);
      if (found) return found;
    }
  }
  return undefined;
}

beforeAll(async () => {
  rig = await blobRig({ name: "outputs-upload-fences", kafka: false, agents: 1, workersPerAgent: 1, agentArgs: () => ["--no-calibrate", "--connect-timeout-ms", "0"] });
  ({ c, redis, prefix } = rig);
  ({ kernelId: spin } = await c.client.registerKernel(await fixtureKernel("spin"), { name: "spin" }));
  // The real agent's identity: the scheduler sees these uploads as that node's.
  const keyFile = findFile(c.cluster.dataDir, "node.key")!;
  const tls = secureChannel(c.address, { ca: readFileSync(c.cluster.credentialFiles().caFile), key: readFileSync(keyFile), cert: readFileSync(path.join(path.dirname(keyFile), "node.crt")) });
  agent = new (v1().AgentService)(c.address, tls.credentials, { ...CHANNEL_OPTIONS, ...tls.options }) as unknown as AgentServiceGrpcClient & grpc.Client;
}, 90_000);

afterAll(async () => {
  agent?.close();
  await rig?.stop();
});

/** A job whose one task spins for ever on the agent: its attempt 1 is the agent's to upload. */
async function heldTask(): Promise<string> {
  const { jobId } = await c.client.submitJob({ kernelId: spin, inputs: [Buffer.alloc(16)], timeoutMs: 60_000, maxAttempts: 1 });
  await until("the task to run", async () => (await c.client.getJob(jobId)).counts?.running === 1, 30_000, 50);
  return jobId;
}

/** An UploadOutput of `data` for task 0, attempt 1 of `jobId`, sent piece by piece as the test says. */
function stepUpload(jobId: string, data: Buffer) {
  const sha256 = createHash("sha256").update(data).digest("hex");
  let settle: (s: { code: grpc.status; details: string }) => void = () => {};
  const ended = new Promise<{ code: grpc.status; details: string }>((r) => (settle = r));
  const call = agent.UploadOutput({ deadline: Date.now() + 30_000 }, (err) => settle(err ? { code: err.code, details: err.details } : { code: grpc.status.OK, details: "" }));
  call.on("error", () => undefined);
  call.write({ header: { jobId, taskIndex: 0, attempt: 1, ref: { sha256, sizeBytes: String(data.byteLength) } } });
  return {
    ended,
    piece: (i: number) => call.write({ data: data.subarray(i * MiB, (i + 1) * MiB) }),
    end: () => call.end(),
  };
}

const uploadKeys = () => redis.keys(`${prefix}:upload:*`);
const outputsOf = (jobId: string) => redis.hkeys(`${prefix}:job:${jobId}:outs`);
const randomBytes = (n: number) => randomFillSync(Buffer.alloc(n));
const timeout = <T>(p: Promise<T>, ms: number, what: string) =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms))]);

describe("an upload under way when things change", () => {
  it("a piece lost in Redis mid-upload: nothing is kept, UNAVAILABLE (retry is safe)", async () => {
    const jobId = await heldTask();
    const up = stepUpload(jobId, randomBytes(3 * MiB));
    up.piece(0);
    const key = await until("the first piece in Redis", async () => {
      const [k] = await uploadKeys();
      return k && (await redis.strlen(k)) === MiB ? k : undefined;
    }, 10_000, 20);
    await redis.del(key); // as an eviction or a FLUSHDB would
    up.piece(1);
    up.piece(2);
    up.end();
    const { code, details } = await up.ended;
    expect(grpc.status[code]).toBe("UNAVAILABLE");
    expect(details).toMatch(/lost part of the upload.*retry is safe/);
    expect(await outputsOf(jobId)).toEqual([]);
    expect(await uploadKeys()).toEqual([]);
    await c.client.cancelJob(jobId);
  }, 60_000);

  it("the task ends mid-upload (its job cancelled): refused on the next piece, its bytes dropped", async () => {
    const jobId = await heldTask();
    const up = stepUpload(jobId, randomBytes(3 * MiB));
    up.piece(0);
    await until("the first piece in Redis", async () => (await uploadKeys()).length === 1, 10_000, 20);
    await c.client.cancelJob(jobId);
    up.piece(1); // no end: the refusal must not wait for the whole upload
    const { code, details } = await timeout(up.ended, 5000, "the refusal");
    expect(grpc.status[code]).toBe("FAILED_PRECONDITION");
    expect(details).toMatch(/has ended.*not retryable/);
    await until("the upload to leave Redis", async () => (await uploadKeys()).length === 0, 3000, 50);
    expect(await outputsOf(jobId)).toEqual([]);
  }, 60_000);

  it("the node is removed (its certificate revoked) mid-upload: the upload ends at once, its bytes dropped", async () => {
    const jobId = await heldTask();
    const up = stepUpload(jobId, randomBytes(3 * MiB));
    up.piece(0);
    await until("the first piece in Redis", async () => (await uploadKeys()).length === 1, 10_000, 20);
    const [node] = await c.client.listNodes();
    await c.client.removeNode(node!.nodeId);
    const { code, details } = await timeout(up.ended, 5000, "the refusal");
    expect(grpc.status[code]).toBe("UNAUTHENTICATED");
    expect(details).toMatch(/revoked.*not retryable/);
    await until("the upload to leave Redis", async () => (await uploadKeys()).length === 0, 3000, 50);
    expect(await outputsOf(jobId)).toEqual([]);
    // Its task failed with the node (maxAttempts 1): nothing left to cancel, then.
    await c.client.cancelJob(jobId).catch(() => undefined);
  }, 60_000);
});
