// The typed client submits a big job (above 4 MiB or 10,000 tasks) as a SubmitJobStream. Given
// several scheduler addresses (an active one and its standbys), a stream submit must fail over as
// a unary one does. The chaos harness found a 5 MiB submit stuck for a minute behind an address
// that refused connections, then failing UNAVAILABLE, while a unary submit on the same client
// moved to the active scheduler at once.
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DistributeXClient } from "../../../client/index.js";
import { fixtureKernel } from "../../helpers/fixtures.js";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";

let c: TestCluster;
let kernelId = "";
/** An address nobody listens on, as a standby's is. */
let refused = "";

beforeAll(async () => {
  c = await startTestCluster("submit-stream-failover", { agents: 1 });
  ({ kernelId } = await c.client.registerKernel(await fixtureKernel("echo"), { name: "echo" }));
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
  refused = `127.0.0.1:${(probe.address() as net.AddressInfo).port}`;
  await new Promise((r) => probe.close(r));
}, 60_000);

afterAll(async () => {
  await c?.stop();
});

describe("a stream submit given a dead address first", () => {
  it.each([
    ["5 MiB in 10 tasks (streamed for its bytes)", 10, 512 * 1024],
    ["12,000 small tasks (streamed for its count)", 12_000, 8],
  ])("%s: moves on to the scheduler that answers, and the job runs once", async (_, tasks, bytes) => {
    const client = new DistributeXClient(`${refused},${c.address}`, { tokenFile: c.cluster.adminTokenFile, timeoutMs: 10_000, retry: { deadlineMs: 20_000 } });
    try {
      const inputs = Array.from({ length: tasks }, (_, i) => {
        const b = Buffer.alloc(bytes);
        b.writeUInt32LE(0, 0); // no spins
        b.writeUInt32LE(i, 4);
        return b;
      });
      const { jobId, taskCount } = await client.submitJob({ kernelId, inputs });
      expect(taskCount).toBe(tasks);
      expect((await client.waitForJob(jobId, undefined, { finalOnly: true })).state).toBe("JOB_STATE_SUCCEEDED");
      expect((await c.client.listJobs()).filter((j) => j.jobId === jobId)).toHaveLength(1);
    } finally {
      client.close();
    }
  }, 90_000);
});
