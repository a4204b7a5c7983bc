// Clients that never read a GetResultOutput stream of a 64 MiB output (raw HTTP/2: the request
// is sent, the response never consumed, so the client's flow-control window stays shut). The
// scheduler must hold about a chunk per stream, not the output (9 stalled streams of 64 MiB would
// be 576 MiB); other clients must read the same output meanwhile; and every stalled stream must be
// released: at its client's deadline (grpc-timeout), when its client goes away (the connection
// closed), and otherwise after outputStallMs (reset: RST_STREAM CANCEL).
import http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exampleKernels, mandelbrotInput } from "../../../kernels/reference/index.js";
import { exampleWasm } from "../../helpers/fixtures.js";
import { metricOf } from "../../helpers/blob-rig.js";
import type { TestCluster } from "../../helpers/cluster.js";
import { MiB, readWithDefaultClient } from "../../helpers/outputs.js";
import { mib, procMemory, schedulerPid } from "../../helpers/rss.js";
import { sleep, until } from "../../helpers/services.js";
import { grpcFrame, stalledReaderCluster } from "../../helpers/stalled-streams.js";

const STALL_MS = 15_000;
const SIZE = 4096 * 4080 * 4;
/** Scheduler RSS growth allowed while 9 streams of a 64 MiB output stall: a few chunks each, and garbage. */
const MEMORY_BOUND = 48 * MiB;

let c: TestCluster;
beforeAll(async () => {
  c = await stalledReaderCluster("outputs-stalled-reader", STALL_MS);
}, 90_000);
afterAll(async () => {
  await c?.stop();
});

const openStreams = () => metricOf(c.cluster, "scheduler", "distx_result_output_streams");

/** The GetResultOutputRequest {job_id = 1, task_index = 2} as one gRPC message frame. */
function requestFrame(jobId: string, taskIndex: number): Buffer {
  const id = Buffer.from(jobId);
  return grpcFrame(Buffer.concat([Buffer.from([0x0a, id.byteLength]), id, Buffer.from([0x10, taskIndex])]));
}

/** A GetResultOutput call whose response is never read. */
function stalledCall(session: http2.ClientHttp2Session, jobId: string, timeout?: string) {
  const stream = session.request({
    ":method": "POST", ":path": "/distributex.v1.DistributeX/GetResultOutput", "content-type": "application/grpc", te: "trailers",
    ...(timeout ? { "grpc-timeout": timeout } : {}),
  });
  stream.on("error", () => undefined);
  stream.pause();
  stream.end(requestFrame(jobId, 0));
  return { stream };
}

describe("clients that never read a 64 MiB output", () => {
  it("hold a chunk each, not the output; others read it meanwhile; released at their deadline, when they go away, or after outputStallMs", async () => {
    const { kernelId } = await c.client.registerKernel(await exampleWasm("mandelbrot"), { name: "mandelbrot" });
    // 4096 x 4080 pixels, one iteration: 63.75 MiB of counts (just under a result's most) from a 48-byte input.
    const input = mandelbrotInput({ x0: -2, y0: -1.5, dx: 3 / 4096, dy: 3 / 4080, width: 4096, height: 4080, maxIter: 1 });
    const { job } = await c.client.run({ kernelId, inputs: [input], timeoutMs: 60_000, skipResultCache: true, resources: { memoryBytes: 192 * MiB } });
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");

    const pid = schedulerPid(c.cluster);
    const before = procMemory(pid, "VmRSS");
    const hwmBefore = procMemory(pid, "VmHWM");
    const stays = http2.connect(`http://${c.address}`);
    const leaves = http2.connect(`http://${c.address}`);
    stays.on("error", () => undefined);
    leaves.on("error", () => undefined);
    const stalled = [
      ...Array.from({ length: 4 }, () => stalledCall(stays, job.jobId)),
      ...Array.from({ length: 4 }, () => stalledCall(leaves, job.jobId)),
    ];
    const withDeadline = stalledCall(stays, job.jobId, "2S");
    const openedAt = Date.now();
    await until("9 streams open", async () => (await openStreams()) === 9, 10_000, 100);
    await sleep(1000);
    const rss = procMemory(pid, "VmRSS");
    const peak = procMemory(pid, "VmHWM");
    console.log(`scheduler RSS ${mib(before)} before (peak so far ${mib(hwmBefore)}), ${mib(rss)} with 9 stalled streams of a 64 MiB output (peak ${mib(peak)})`);
    expect(Math.max(rss, peak) - Math.max(before, hwmBefore)).toBeLessThan(MEMORY_BOUND);

    // The deadline ends its stream; the others still stall.
    await until("the stream with a deadline released", async () => (await openStreams()) === 8, 10_000, 100);

    // Others read the same output meanwhile, byte-exact.
    const [typed] = await c.client.getResults(job.jobId);
    expect(typed!.output.byteLength).toBe(SIZE);
    expect(exampleKernels.mandelbrot!.check(input, typed!.output).ok).toBe(true);
    const plain = await readWithDefaultClient(c, job.jobId);
    expect(Buffer.from(plain.outputs.get(0)!).equals(Buffer.from(typed!.output))).toBe(true);
    expect(await openStreams()).toBe(8);

    // A client that goes away releases its streams at once.
    leaves.destroy();
    await until("the departed client's streams released", async () => (await openStreams()) === 4, 5000, 50);
    expect(Date.now() - openedAt).toBeLessThan(STALL_MS);

    // The rest are reset after outputStallMs (a status could not pass the data they hold back).
    await until("the stalled streams ended", async () => (await openStreams()) === 0, STALL_MS + 10_000, 200);
    expect(Date.now() - openedAt).toBeGreaterThanOrEqual(STALL_MS - 1000);
    for (const s of stalled.slice(0, 4)) {
      await until("the reset to reach the client", async () => s.stream.closed, 5000, 50);
      expect(s.stream.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
    }
    expect(withDeadline.stream.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
    stays.close();
  }, 120_000);
});
