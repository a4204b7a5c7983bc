// GetResults pages are bounded in bytes: a client with gRPC's default 4 MiB receive limit (a
// plain @grpc/grpc-js stub built from the .proto, not our typed client) fetches 1 MiB results
// page by page, following next_page_token, and gets every one.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { protoDir, protoFile } from "../../../common/paths.js";
import { fixtureKernel } from "../../helpers/fixtures.js";
import { startTestCluster, type TestCluster } from "../../helpers/cluster.js";

const TASKS = 12;
const RESULT_BYTES = 1024 * 1024;

let c: TestCluster;
let jobId = "";

/** Task i's input (and, from the echo kernel, its output): no spins, then bytes all equal to i. */
const inputOf = (i: number) => {
  const b = Buffer.alloc(RESULT_BYTES, i);
  b.writeUInt32LE(0, 0);
  return b;
};

beforeAll(async () => {
  // Outputs inline (no output by reference): what is tested here is the paging of inline results.
  c = await startTestCluster("results-paged", {
    agents: 1,
    schedulerArgs: ["--heartbeat-interval-ms", "200", "--agent-timeout-ms", "2000", "--drain-grace-ms", "2000", "--output-by-ref-bytes", "0"],
  });
  const { kernelId } = await c.client.registerKernel(await fixtureKernel("echo"), { name: "echo" });
  ({ jobId } = await c.client.submitJob({ kernelId, inputs: Array.from({ length: TASKS }, (_, i) => inputOf(i)) }));
  const job = await c.client.waitForJob(jobId);
  expect(job.state).toBe("JOB_STATE_SUCCEEDED");
}, 120_000);

afterAll(async () => {
  await c?.stop();
});

interface Page {
  results: { taskIndex: number; output: Buffer }[];
  nextPageToken: string;
  total: number;
}

describe("GetResults bounded by bytes", () => {
  it("a default-limit plain gRPC client reads 1 MiB results page by page, none lost", async () => {
    const def = protoLoader.loadSync(protoFile(), { includeDirs: [protoDir()], longs: String, enums: String, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { distributex: { v1: { DistributeX: grpc.ServiceClientConstructor } } };
    const tls = c.cluster.credentialFiles();
    const { readFileSync } = await import("node:fs");
    // No channel options: gRPC's default 4 MiB receive limit.
    const stub = new pkg.distributex.v1.DistributeX(c.address, grpc.credentials.createSsl(readFileSync(tls.caFile))) as unknown as {
      GetResults(req: object, md: grpc.Metadata, cb: (e: grpc.ServiceError | null, r: Page) => void): void;
      close(): void;
    };
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${c.adminToken}`);
    const got = new Map<number, Buffer>();
    let token = "";
    let pages = 0;
    do {
      const page = await new Promise<Page>((resolve, reject) => stub.GetResults({ jobId, pageToken: token }, md, (e, r) => (e ? reject(e) : resolve(r))));
      pages++;
      expect(page.total).toBe(TASKS);
      for (const r of page.results) {
        expect(got.has(r.taskIndex)).toBe(false);
        got.set(r.taskIndex, r.output);
      }
      token = page.nextPageToken;
    } while (token);
    stub.close();
    expect(pages).toBeGreaterThan(1);
    expect([...got.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: TASKS }, (_, i) => i));
    for (const [i, out] of got) expect(Buffer.compare(out, inputOf(i))).toBe(0);
  }, 120_000);

  it("old offset/limit requests still work, and the typed client follows tokens", async () => {
    const results = await c.client.getResults(jobId);
    expect(results.map((r) => r.taskIndex)).toEqual(Array.from({ length: TASKS }, (_, i) => i));
    // offset/limit: a range of task indices, still bounded in bytes.
    const stub = (c.client as unknown as { stub: { GetResults(req: object, md: grpc.Metadata, cb: (e: grpc.ServiceError | null, r: Page) => void): void } }).stub;
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${c.adminToken}`);
    const page = await new Promise<Page>((resolve, reject) => stub.GetResults({ jobId, offset: 5, limit: 2 }, md, (e, r) => (e ? reject(e) : resolve(r))));
    expect(page.results.map((r) => r.taskIndex)).toEqual([5, 6]);
    expect(page.nextPageToken).toBe("");
  }, 60_000);
});
