// Clients that never read a GetResultOutput stream of a 32 MiB output kept in Redis (raw HTTP/2:
// the response is never consumed, so the window stays shut). Each chunk the scheduler reads from
// Redis (GETRANGE) is a fresh 1 MiB buffer, so what a stalled stream holds is what it read: at
// most two chunks (the one going out and the next, as FetchBlob), not the 16 grpc-js would buffer
// before write() asks to wait. Counted in Redis's own GETRANGE calls, and in the scheduler's RSS.
// The stalled streams are reset after outputStallMs, and a plain reader gets every byte meanwhile.
import http2 from "node:http2";
import { describe, expect, it } from "vitest";
import { exampleKernels } from "../../../kernels/reference/index.js";
import { metricOf } from "../../helpers/blob-rig.js";
import { MiB, readWithDefaultClient } from "../../helpers/outputs.js";
import { mib } from "../../helpers/rss.js";
import { sleep, until } from "../../helpers/services.js";
import { largeOutputJob, MEMORY_BOUND, readerSessions, schedulerMemory, STALL_MS, stalledResultOutput, useStalledReaderCluster } from "../../helpers/stalled-streams.js";

const SIZE = 4096 * 2048 * 4;
const STALLED = 4;
/** Chunks a stalled stream may read from the store: the one going out and the next. */
const CHUNKS_HELD = 2;

const cluster = useStalledReaderCluster({ name: "outputs-stalled-reader-redis", privateRedis: true });
const openStreams = () => metricOf(cluster().cluster, "scheduler", "distx_result_output_streams");
/** GETRANGE calls the private Redis has answered: one per chunk the scheduler read. */
const chunkReads = () => Number(/^cmdstat_getrange:calls=(\d+)/m.exec(cluster().redis!.cli("info", "commandstats"))?.[1] ?? 0);

describe("clients that never read a 32 MiB output kept in Redis", () => {
  it("make the scheduler read and hold at most two chunks each; reset after outputStallMs; a plain reader gets every byte", async () => {
    const c = cluster();
    // 4096 x 2048 pixels, one iteration: 32 MiB of counts from a 48-byte input.
    const { job, input } = await largeOutputJob(c, 4096, 2048, 128 * MiB);
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");

    const { rss: before, peak: hwmBefore } = schedulerMemory(c);
    const readsBefore = chunkReads();
    const { stays } = readerSessions(c.address);
    const stalled = Array.from({ length: STALLED }, () => stalledResultOutput(stays, job.jobId));
    const openedAt = Date.now();
    await until(`${STALLED} streams open`, async () => (await openStreams()) === STALLED, 10_000, 100);
    await sleep(1000);
    const reads = chunkReads() - readsBefore;
    const { rss, peak } = schedulerMemory(c);
    console.log(`${reads} chunks read from Redis for ${STALLED} stalled streams of a 32 MiB output; scheduler RSS ${mib(before)} before (peak ${mib(hwmBefore)}), ${mib(rss)} now (peak ${mib(peak)})`);
    expect(reads).toBeGreaterThanOrEqual(STALLED);
    expect(reads).toBeLessThanOrEqual(STALLED * CHUNKS_HELD);
    expect(Math.max(rss, peak) - Math.max(before, hwmBefore)).toBeLessThan(MEMORY_BOUND);
    expect(await openStreams()).toBe(STALLED);

    // A plain reader gets every byte meanwhile (typed client and grpc-js defaults), and the stalled ones still hold.
    const [typed] = await c.client.getResults(job.jobId);
    expect(typed!.output.byteLength).toBe(SIZE);
    expect(exampleKernels.mandelbrot!.check(input, typed!.output).ok).toBe(true);
    const plain = await readWithDefaultClient(c, job.jobId);
    expect(Buffer.from(plain.outputs.get(0)!).equals(Buffer.from(typed!.output))).toBe(true);
    expect(stalled.every((s) => !s.stream.closed)).toBe(true);

    // Reset after outputStallMs, having read no more.
    const readsStalled = chunkReads();
    await until("the stalled streams ended", async () => (await openStreams()) === 0, STALL_MS + 10_000, 200);
    expect(Date.now() - openedAt).toBeGreaterThanOrEqual(STALL_MS - 1000);
    for (const s of stalled) {
      await until("the reset to reach the client", async () => s.stream.closed, 5000, 50);
      expect(s.stream.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
    }
    expect(chunkReads()).toBe(readsStalled);
    stays.close();
  }, 120_000);
});
