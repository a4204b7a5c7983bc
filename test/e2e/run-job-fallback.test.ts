// The typed client's runJob against a scheduler from before RunJob. Such a scheduler answers
// RunJob with UNIMPLEMENTED (gRPC's answer for a method a server does not have); the client must
// then submit the same request by SubmitJob and follow it by WatchJob. The "old scheduler" here
// is a real gRPC server whose service has every method but RunJob, each forwarding to a real
// scheduler (plain text: a cluster started with --insecure), so the wire is what an old one shows.
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DistributeXClient, type JobEvent } from "../../client/index.js";
import { CHANNEL_OPTIONS, v1 } from "../../common/proto.js";
import { exampleKernels } from "../../kernels/reference/index.js";
import { startTestCluster, type TestCluster } from "../helpers/cluster.js";
import { exampleWasm } from "../helpers/fixtures.js";

const saxpy = exampleKernels.saxpy!;
let t: TestCluster;
let oldScheduler: grpc.Server;
let oldAddress: string;
const calls: string[] = [];

type Forward = (request: unknown, metadata: grpc.Metadata) => grpc.ClientReadableStream<unknown>;
type ForwardUnary = (request: unknown, metadata: grpc.Metadata, callback: (err: grpc.ServiceError | null, reply?: unknown) => void) => void;

/** Every method of the current contract except RunJob, forwarded to the real scheduler. */
function startOldScheduler(target: string): Promise<{ server: grpc.Server; address: string }> {
  const V1 = v1();
  const upstream = new V1.DistributeX(target, grpc.credentials.createInsecure(), CHANNEL_OPTIONS) as unknown as Record<string, Forward & ForwardUnary>;
  const service = V1.DistributeX.service as grpc.ServiceDefinition;
  const { RunJob: _, ...oldService } = service;
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const [name, def] of Object.entries(oldService)) {
    if (def.requestStream) continue; // client streams are not used by runJob's fallback
    handlers[name] = def.responseStream
      ? (call: grpc.ServerWritableStream<unknown, unknown>) => {
          calls.push(name);
          const up = upstream[name]!(call.request, call.metadata);
          up.on("data", (m) => call.write(m));
          up.on("error", (e: grpc.ServiceError) => call.emit("error", e));
          up.on("end", () => call.end());
          call.on("cancelled", () => up.cancel());
        }
      : (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
          calls.push(name);
          upstream[name]!(call.request, call.metadata, (err, reply) => callback(err, reply));
        };
  }
  const server = new grpc.Server(CHANNEL_OPTIONS);
  server.addService(oldService, handlers);
  return new Promise((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve({ server, address: `127.0.0.1:${port}` }))),
  );
}

beforeAll(async () => {
  t = await startTestCluster("run-job-fallback", { insecure: true });
  ({ server: oldScheduler, address: oldAddress } = await startOldScheduler(t.address));
});

afterAll(async () => {
  oldScheduler?.forceShutdown();
  await t?.stop();
});

describe("runJob against a scheduler without RunJob", () => {
  it("falls back to SubmitJob then WatchJob: one job, every outcome once, right results", async () => {
    const client = new DistributeXClient(oldAddress, { insecure: true });
    try {
      const { kernelId } = await client.registerKernel(await exampleWasm("saxpy"), { name: "saxpy" });
      const inputs = saxpy.makeTasks({ tasks: 6, size: 128, seed: 11 });
      const jobsBefore = (await t.client.listJobs(1000)).length;
      const outcomes = new Map<number, number>();
      calls.length = 0;
      const job = await client.runJob({ kernelId, inputs, skipResultCache: true }, (ev: JobEvent) => {
        if (ev.task) outcomes.set(ev.task.taskIndex, (outcomes.get(ev.task.taskIndex) ?? 0) + 1);
      });
      expect(job.state).toBe("JOB_STATE_SUCCEEDED");
      expect(calls.filter((c) => c === "SubmitJob")).toHaveLength(1);
      expect(calls).toContain("WatchJob");
      expect((await t.client.listJobs(1000)).length).toBe(jobsBefore + 1);
      expect([...outcomes.keys()].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5]);
      expect([...outcomes.values()].every((n) => n === 1)).toBe(true);
      const results = await client.getResults(job.jobId);
      for (const r of results) expect(saxpy.check(inputs[r.taskIndex]!, r.output).ok).toBe(true);
    } finally {
      client.close();
    }
  });
});
