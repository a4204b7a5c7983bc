// Readers that open FetchBlob for a 16 MiB input and never read it (gRPC over raw HTTP/2 on
// loopback: the request is sent, the response never consumed, so the window stays shut). The
// scheduler must hold at most two chunks per stream (not the 16 grpc-js would buffer before
// write() asks to wait: the whole blob), not pin it or its handler for ever: a reader that
// goes away releases its streams at once, the others are reset (RST_STREAM CANCEL) after
// outputStallMs, and distx_blob_fetch_streams returns to 0. Meanwhile a plain reader reads the
// same blob whole, and the real agent fetches it for the task that names it, which succeeds.
import * as grpc from "@grpc/grpc-js";
import { createHash } from "node:crypto";
import http2 from "node:http2";
import { describe, expect, it } from "vitest";
import { fetchBlobOnce } from "../../../agent/blob-fetch.js";
import { CHANNEL_OPTIONS, v1 } from "../../../common/proto.js";
import type { AgentServiceGrpcClient } from "../../../common/types.js";
import { fixtureKernel } from "../../helpers/fixtures.js";
import { metricOf } from "../../helpers/blob-rig.js";
import { echoInput, MiB } from "../../helpers/outputs.js";
import { mib } from "../../helpers/rss.js";
import { sleep, until } from "../../helpers/services.js";
import { grpcFrame, MEMORY_BOUND, readerSessions, schedulerMemory, STALL_MS, useStalledReaderCluster } from "../../helpers/stalled-streams.js";

const SIZE = 16 * MiB;

const cluster = useStalledReaderCluster({ name: "blob-stalled-reader" });
const openStreams = () => metricOf(cluster().cluster, "scheduler", "distx_blob_fetch_streams");
const agentClient = () => new (v1().AgentService)(cluster().address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS) as unknown as AgentServiceGrpcClient & grpc.Client;

/** The FetchBlobRequest {sha256 = 1, job_id = 2, task_index = 3} as one gRPC message frame. */
function requestFrame(sha256: string, jobId: string, taskIndex: number): Buffer {
  const field = (tag: number, v: string) => Buffer.concat([Buffer.from([tag, Buffer.byteLength(v)]), Buffer.from(v)]);
  return grpcFrame(Buffer.concat([field(0x0a, sha256), field(0x12, jobId), Buffer.from([0x18, taskIndex])]));
}

/**
 * A FetchBlob call whose response nobody reads (raw HTTP/2: grpc-js would read every message
 * into memory whether asked or not, so only this shuts the stream's flow-control window).
 */
function stalledFetch(session: http2.ClientHttp2Session, req: { sha256: string; jobId: string; taskIndex: number }) {
  const stream = session.request({ ":method": "POST", ":path": "/distributex.v1.AgentService/FetchBlob", "content-type": "application/grpc", te: "trailers" });
  const ended: { at?: number } = {};
  stream.on("error", () => undefined);
  stream.on("close", () => (ended.at = Date.now()));
  stream.pause();
  stream.end(requestFrame(req.sha256, req.jobId, req.taskIndex));
  return Object.assign(ended, { stream });
}

describe("FetchBlob readers that never read", () => {
  it("hold a chunk each; released when they go away or after outputStallMs; a real agent fetches the same blob meanwhile", async () => {
    const c = cluster();
    const { kernelId: spin } = await c.client.registerKernel(await fixtureKernel("spin"), { name: "spin" });
    const { kernelId: echo } = await c.client.registerKernel(await fixtureKernel("echo"), { name: "echo" });
    const input = echoInput(SIZE);
    const sha256 = createHash("sha256").update(input).digest("hex");
    // The agent's one worker is kept busy, so the task that reads the blob waits (its input
    // fetched as it is queued, while the stalled readers open); the stalled readers name that task.
    const blocker = await c.client.submitJob({ kernelId: spin, inputs: [Buffer.alloc(8)], timeoutMs: 120_000, maxAttempts: 1 });
    await until("the blocker running", async () => (await c.client.getJob(blocker.jobId)).counts?.running === 1, 60_000, 50);
    expect(await openStreams()).toBe(0);
    const { jobId } = await c.client.submitJob({ kernelId: echo, inputs: [input], timeoutMs: 120_000, skipResultCache: true, resources: { memoryBytes: 96 * MiB } });
    // From here (the input stored): what the readers cost, and the agent's own fetch.
    const { rss: before, peak: hwmBefore } = schedulerMemory(c);
    const { stays, leaves } = readerSessions(c.address);
    const req = { sha256, jobId, taskIndex: 0 };
    const stalled = Array.from({ length: 4 }, () => stalledFetch(stays, req));
    const departed = Array.from({ length: 2 }, () => stalledFetch(leaves, req));
    const openedAt = Date.now();
    await until("6 blob streams open (and the agent's fetch done)", async () => (await openStreams()) === 6 && (await metricOf(c.cluster, "agent-0", "distx_agent_blob_fetches_total")) === 1, 10_000, 100);
    await sleep(1000);
    const { rss, peak } = schedulerMemory(c);
    console.log(`scheduler RSS ${mib(before)} before (peak ${mib(hwmBefore)}), ${mib(rss)} with 6 stalled readers of a 16 MiB blob (peak ${mib(peak)})`);
    expect(Math.max(rss, peak) - Math.max(before, hwmBefore)).toBeLessThan(MEMORY_BOUND);
    // Still open: each holds its chunk (a stream that took the whole blob into its buffers would have ended).
    expect(await openStreams()).toBe(6);

    // A reader that goes away releases its streams at once.
    leaves.destroy();
    await until("the departed reader's streams released", async () => (await openStreams()) === 4, 5000, 50);
    expect(Date.now() - openedAt).toBeLessThan(STALL_MS);

    // Meanwhile a plain reader reads the blob whole, and the agent, freed, runs its task on it.
    const plain = agentClient();
    const into = new Uint8Array(SIZE);
    expect(await fetchBlobOnce(plain, { sha256, sizeBytes: SIZE }, into, { jobId, taskIndex: 0 })).toBeUndefined();
    expect(Buffer.from(into).equals(input)).toBe(true);
    plain.close();
    await c.client.cancelJob(blocker.jobId);
    const job = await c.client.waitForJob(jobId);
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    const [result] = await c.client.getResults(jobId);
    expect(Buffer.from(result!.output).equals(input)).toBe(true);
    expect(await metricOf(c.cluster, "agent-0", "distx_agent_blob_fetches_total")).toBe(1);
    // All of it while the stalled readers were still open.
    expect(stalled.every((s) => s.at === undefined)).toBe(true);

    // The rest are reset after outputStallMs (RST_STREAM CANCEL: a status could not pass the data they hold back).
    await until("the stalled streams ended", async () => (await openStreams()) === 0, STALL_MS + 10_000, 200);
    for (const s of stalled) {
      await until("the reset to reach the reader", async () => s.at !== undefined, 5000, 50);
      expect(s.stream.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
      expect(s.at! - openedAt).toBeGreaterThanOrEqual(STALL_MS - 1000);
      expect(s.at! - openedAt).toBeLessThan(STALL_MS + 10_000);
    }
    stays.close();
    expect(await openStreams()).toBe(0);
  }, 180_000);
});
