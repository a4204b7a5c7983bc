// Each WatchJob stream has a bounded outbox. 500 watchers that never read, on a 10,000-task job,
// grew the scheduler by ~820 MB (every event of the job queued for each), kept after they closed.
// Now a watcher that falls behind is told so (RESOURCE_EXHAUSTED, "resume") and dropped; the
// typed client resumes from where it was and still sees every outcome exactly once.
import * as grpc from "@grpc/grpc-js";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHANNEL_OPTIONS, v1 } from "../../../common/proto.js";
import type { JobEvent } from "../../../common/types.js";
import { fixtureKernel } from "../../helpers/fixtures.js";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";
import { MiB, mib, procMemory, schedulerPid } from "../../helpers/rss.js";

const TASKS = 10_000;
const WATCHERS = 500;

let c: TestCluster;

beforeAll(async () => {
  c = await startTestCluster("stalled-watchers", { agents: 2 });
}, 60_000);

afterAll(async () => {
  await c?.stop();
});

/** Opens `n` plain WatchJob streams with no 'data' listener: grpc-js stops reading them, so their events pile up. */
function openStalled(n: number, jobId: string) {
  const V1 = v1();
  const stub = new V1.DistributeX(c.address, grpc.credentials.createSsl(readFileSync(c.cluster.credentialFiles().caFile)), CHANNEL_OPTIONS);
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${c.adminToken}`);
  const streams = Array.from({ length: n }, () => stub.WatchJob({ jobId, finalOnly: false, resume: false, seenOutcomes: Buffer.alloc(0) }, md));
  for (const s of streams) s.on("error", () => undefined).pause();
  // Listened for from the start: grpc-js emits 'status' when the trailers arrive, which may be
  // before the test gets to read the stream (a listener added later would wait for ever).
  const statuses = streams.map((s) => new Promise<grpc.StatusObject>((resolve) => s.on("status", resolve)));
  return {
    streams,
    statuses,
    close() {
      for (const s of streams) s.cancel();
      stub.close();
    },
  };
}

async function submit(kernelId: string): Promise<string> {
  const input = Buffer.alloc(64);
  input.writeUInt32LE(200_000, 0); // a little work per task: the job runs for seconds
  return (await c.client.submitJob({ kernelId, inputs: Array.from({ length: TASKS }, () => input) })).jobId;
}

describe("stalled watchers", () => {
  it("500 watchers that never read leave the scheduler's memory bounded; a resumed reader sees every outcome once", async () => {
    const { kernelId } = await c.client.registerKernel(await fixtureKernel("echo"), { name: "echo" });
    const pid = schedulerPid(c.cluster);
    const jobId = await submit(kernelId);
    const before = procMemory(pid, "VmRSS");
    const stalled = openStalled(WATCHERS, jobId);

    // A typed-client reader that stops reading for a while, then goes on.
    const seen = new Map<number, number>();
    let final: string | undefined;
    const reader = (async () => {
      let first = true;
      for await (const ev of c.client.watchJob(jobId, { finalOnly: false })) {
        if (first) {
          first = false;
          await new Promise((r) => setTimeout(r, 4000)); // falls behind while the job runs
        }
        if (ev.task && ["TASK_STATE_SUCCEEDED", "TASK_STATE_FAILED", "TASK_STATE_CANCELLED"].includes(ev.task.state)) seen.set(ev.task.taskIndex, (seen.get(ev.task.taskIndex) ?? 0) + 1);
        if (ev.job) final = ev.job.state;
      }
    })();

    const job = await c.client.waitForJob(jobId, undefined, { finalOnly: true });
    expect(job.state).toBe("JOB_STATE_SUCCEEDED");
    await reader;
    expect(final).toBe("JOB_STATE_SUCCEEDED");
    expect(seen.size).toBe(TASKS);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);

    const peak = procMemory(pid, "VmHWM");
    console.log(`scheduler RSS ${mib(before)} before the watchers, peak ${mib(peak)}`);
    // Each stalled watch holds at most its outbox (256 KiB) plus what HTTP/2 flow control lets
    // through to the client (~64 KiB) before it is dropped: 500 × 320 KiB ≈ 160 MiB, plus the
    // streams' own state and GC slack. 256 MiB holds that; the unbounded outboxes grew ~650 MiB.
    expect(peak - before).toBeLessThan(256 * MiB);

    // A stalled watcher that reads at last finds it was told to resume.
    stalled.streams[0]!.on("data", (_: JobEvent) => undefined).resume();
    const status = await stalled.statuses[0]!;
    expect(status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(status.details).toMatch(/resume/);
    stalled.close();

    // Released when they close: V8 keeps the pages it grew (RSS does not fall), but a second
    // round of 500 stalled watchers on another job reuses them; retained memory would add
    // another round's worth on top.
    await new Promise((r) => setTimeout(r, 2000));
    const second = await submit(kernelId);
    const again = openStalled(WATCHERS, second);
    expect((await c.client.waitForJob(second, undefined, { finalOnly: true })).state).toBe("JOB_STATE_SUCCEEDED");
    again.close();
    const peak2 = procMemory(pid, "VmHWM");
    console.log(`scheduler peak RSS ${mib(peak2)} after a second round`);
    expect(peak2 - peak).toBeLessThan(96 * MiB);
    // The scheduler still answers and its agents stay READY.
    expect((await c.client.listNodes()).map((n) => n.state)).toEqual(["NODE_STATE_READY", "NODE_STATE_READY"]);
  }, 300_000);
});
