// Clients that never read a GetResultOutput stream of a 64 MiB output (raw HTTP/2: the request
// is sent, the response never consumed, so the client's flow-control window stays shut). The
// scheduler must hold about a chunk per stream, not the output (9 stalled streams of 64 MiB would
// be 576 MiB); other clients must read the same output meanwhile; and every stalled stream must be
// released: at its client's deadline (grpc-timeout), when its client goes away (the connection
// closed), and otherwise after outputStallMs (reset: RST_STREAM CANCEL).
import http2 from "node:http2";
import { describe, expect, it } from "vitest";
import { exampleKernels } from "../../../kernels/reference/index.js";
import { metricOf } from "../../helpers/blob-rig.js";
import { MiB, readWithDefaultClient } from "../../helpers/outputs.js";
import { mib } from "../../helpers/rss.js";
import { sleep, until } from "../../helpers/services.js";
import { largeOutputJob, MEMORY_BOUND, readerSessions, schedulerMemory, STALL_MS, stalledResultOutput, useStalledReaderCluster } from "../../helpers/stalled-streams.js";

const SIZE = 4096 * 4080 * 4;

const cluster = useStalledReaderCluster({ name: "outputs-stalled-reader" });
const openStreams = () => metricOf(cluster().cluster, "scheduler", "distx_result_output_streams");

describe("clients that never read a 64 MiB output", () => {
  it("hold a chunk each, not the output; others read it meanwhile; released at their deadline, when they go away, or after outputStallMs", async () => {
    const c = cluster();
    // 4096 x 4080 pixels, one iteration: 63.75 MiB of counts (just under a result's most) from a 48-byte input.
    const { job, input } = await largeOutputJob(c, 4096, 4080, 192 * MiB);
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");

    const { rss: before, peak: hwmBefore } = schedulerMemory(c);
    const { stays, leaves } = readerSessions(c.address);
    const stalled = [
      ...Array.from({ length: 4 }, () => stalledResultOutput(stays, job.jobId)),
      ...Array.from({ length: 4 }, () => stalledResultOutput(leaves, job.jobId)),
    ];
    const withDeadline = stalledResultOutput(stays, job.jobId, "2S");
    const openedAt = Date.now();
    await until("9 streams open", async () => (await openStreams()) === 9, 10_000, 100);
    await sleep(1000);
    const { rss, peak } = schedulerMemory(c);
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
