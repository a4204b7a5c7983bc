// Many short watches on one client connection. A client that cancelled every watch stream after
// its final event (before the trailers arrived) sent one RST_STREAM per watch; the scheduler's
// HTTP/2 layer (nghttp2's rapid-reset guard: a burst of 1000, then 33 a second) answers a client
// resetting faster than that with GOAWAY(INTERNAL_ERROR), which failed every call in flight on
// the connection with INTERNAL, SubmitJobs included. Real scheduler and agent, TLS and a token.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exampleKernels } from "../../../kernels/reference/index.js";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";
import { exampleWasm } from "../../helpers/fixtures.js";

const saxpy = exampleKernels.saxpy!;
let t: TestCluster;
let kernelId: string;

beforeAll(async () => {
  t = await startTestCluster("watch-churn");
  kernelId = (await t.client.registerKernel(await exampleWasm("saxpy"), { name: "saxpy" })).kernelId;
});

afterAll(async () => {
  await t?.stop();
});

describe("many short watches on one connection", () => {
  it("3,000 watches of finished jobs, with submissions between them, all succeed: the connection is never reset", async () => {
    const inputs = saxpy.makeTasks({ tasks: 1, size: 16, seed: 3 });
    const finished = await t.client.runJob({ kernelId, inputs, skipResultCache: true });
    expect(finished.state).toBe("JOB_STATE_SUCCEEDED");
    const failures: string[] = [];
    let watched = 0;
    let submitted = 0;
    // 3,000 watches is three times the guard's burst: fast or slow, a client that resets each
    // stream trips it (the refill is 33 a second; this finishes in seconds).
    const worker = async (w: number) => {
      for (let i = 0; i < 150; i++) {
        try {
          const job = await t.client.waitForJob(finished.jobId, undefined, { finalOnly: true });
          if (job.state === "JOB_STATE_SUCCEEDED") watched++;
          if (i % 50 === 0) {
            // A submission between watches, on the same connection: the call the old failure hit hardest.
            const ran = await t.client.runJob({ kernelId, inputs: saxpy.makeTasks({ tasks: 1, size: 16, seed: 100 + w * 10 + i }), skipResultCache: true });
            if (ran.state === "JOB_STATE_SUCCEEDED") submitted++;
          }
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    };
    await Promise.all(Array.from({ length: 20 }, (_, w) => worker(w)));
    expect(failures.slice(0, 3)).toEqual([]);
    expect(watched).toBe(3000);
    expect(submitted).toBe(60);
  }, 120_000);

  it("a watch left before its job ends is cancelled cleanly (no unhandled CANCELLED error)", async () => {
    const inputs = saxpy.makeTasks({ tasks: 400, size: 4096, seed: 4 });
    const { jobId } = await t.client.submitJob({ kernelId, inputs, skipResultCache: true });
    for await (const ev of t.client.watchJob(jobId)) if (ev.job) break; // the first snapshot, then leave
    // The cancel's CANCELLED arrives after the loop let go of the stream: vitest fails the run on
    // an unhandled 'error' event, which is what this waits for.
    await new Promise((r) => setTimeout(r, 500));
    expect((await t.client.waitForJob(jobId, undefined, { finalOnly: true })).state).toBe("JOB_STATE_SUCCEEDED");
  });
});
