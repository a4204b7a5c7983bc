// What the stalled-reader tests share: a cluster (one agent, one worker, no TLS so a raw HTTP/2
// client can speak to it) whose scheduler resets streams stalled past `stallMs`, registered
// around a test file by useStalledReaderCluster; the connections its raw readers use and the
// scheduler's memory they are judged by; and the gRPC framing for the requests those raw clients
// send (grpc-js would read every response message into memory whether asked or not, so only raw
// HTTP/2 keeps a stream's window shut).
import http2 from "node:http2";
import { afterAll, beforeAll } from "vitest";
import type { Job } from "../../client/index.js";
import { mandelbrotInput } from "../../kernels/reference/index.js";
import { startTestCluster, type TestCluster } from "./cluster.js";
import { exampleWasm } from "./fixtures.js";
import { privateRedis, type PrivateRedis } from "./private-redis.js";
import { MiB, procMemory, schedulerPid } from "./rss.js";

/** The scheduler's outputStallMs in these tests: long enough to see streams held, short enough to see them reset. */
export const STALL_MS = 15_000;
/** Scheduler RSS growth allowed while a test's readers stall: a few chunks each, and garbage. */
export const MEMORY_BOUND = 48 * MiB;

export function stalledReaderCluster(name: string, stallMs: number, redisUrl?: string): Promise<TestCluster> {
  return startTestCluster(name, {
    agents: 1,
    workersPerAgent: 1,
    insecure: true,
    agentArgs: () => ["--no-calibrate", "--connect-timeout-ms", "0"],
    schedulerArgs: [
      "--heartbeat-interval-ms", "200", "--agent-timeout-ms", "3000", "--drain-grace-ms", "0", "--output-stall-ms", String(stallMs),
      ...(redisUrl ? ["--state", "redis", "--redis-url", redisUrl, "--redis-prefix", "stalled"] : []),
    ],
  });
}

export interface StalledReaderOptions {
  /** Names the cluster's logs folder. */
  name: string;
  /** The scheduler's outputStallMs (default STALL_MS). */
  stallMs?: number;
  /**
   * State in a private Redis instead of the scheduler's memory: every chunk read is then a fresh
   * buffer (the memory store hands out views of what it keeps, which cost no memory however many
   * a stream buffers), and the reads can be counted (INFO commandstats).
   */
  privateRedis?: boolean;
}

export interface StalledReaderCluster extends TestCluster {
  /** The private Redis, with `privateRedis`. */
  redis: PrivateRedis | undefined;
}

/**
 * The stalled-reader cluster of a test file: started before its tests (beforeAll) and stopped
 * after them (afterAll), both registered here. Returns the cluster, for use inside the tests.
 */
export function useStalledReaderCluster(o: StalledReaderOptions): () => StalledReaderCluster {
  let c: StalledReaderCluster | undefined;
  let redis: PrivateRedis | undefined;
  beforeAll(async () => {
    if (o.privateRedis) redis = await privateRedis();
    c = { ...(await stalledReaderCluster(o.name, o.stallMs ?? STALL_MS, redis?.url)), redis };
  }, 90_000);
  afterAll(async () => {
    await c?.stop();
    redis?.stop();
  });
  return () => {
    if (!c) throw new Error(`the stalled-reader cluster ${o.name} is not running (its start failed)`);
    return c;
  };
}

/**
 * Runs a job of one task whose output, kept by reference, is `width` × `height` × 4 bytes (the
 * mandelbrot kernel's counts, one iteration, from a 48-byte input), for readers to stall on.
 */
export async function largeOutputJob(c: TestCluster, width: number, height: number, memoryBytes: number): Promise<{ job: Job; input: Uint8Array }> {
  const { kernelId } = await c.client.registerKernel(await exampleWasm("mandelbrot"), { name: "mandelbrot" });
  const input = mandelbrotInput({ x0: -2, y0: -1.5, dx: 3 / width, dy: 3 / height, width, height, maxIter: 1 });
  const { job } = await c.client.run({ kernelId, inputs: [input], timeoutMs: 60_000, skipResultCache: true, resources: { memoryBytes } });
  return { job, input };
}

/** Two connections for raw readers: one that stays, and one the test destroys (a reader that goes away). */
export function readerSessions(address: string): { stays: http2.ClientHttp2Session; leaves: http2.ClientHttp2Session } {
  const stays = http2.connect(`http://${address}`);
  const leaves = http2.connect(`http://${address}`);
  stays.on("error", () => undefined);
  leaves.on("error", () => undefined);
  return { stays, leaves };
}

/** The scheduler's resident memory now and its peak so far (helpers/rss.ts). */
export function schedulerMemory(c: TestCluster): { rss: number; peak: number } {
  const pid = schedulerPid(c.cluster);
  return { rss: procMemory(pid, "VmRSS"), peak: procMemory(pid, "VmHWM") };
}

/** One protobuf message body as a gRPC length-prefixed frame (uncompressed). */
export function grpcFrame(body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.byteLength, 1);
  return Buffer.concat([head, body]);
}

/** The GetResultOutputRequest {job_id = 1, task_index = 2} as one gRPC message frame. */
function resultOutputRequest(jobId: string, taskIndex: number): Buffer {
  const id = Buffer.from(jobId);
  return grpcFrame(Buffer.concat([Buffer.from([0x0a, id.byteLength]), id, Buffer.from([0x10, taskIndex])]));
}

/** A GetResultOutput call (of task 0) whose response is never read; `timeout` is its grpc-timeout ("2S"). */
export function stalledResultOutput(session: http2.ClientHttp2Session, jobId: string, timeout?: string): { stream: http2.ClientHttp2Stream } {
  const stream = session.request({
    ":method": "POST", ":path": "/distributex.v1.DistributeX/GetResultOutput", "content-type": "application/grpc", te: "trailers",
    ...(timeout ? { "grpc-timeout": timeout } : {}),
  });
  stream.on("error", () => undefined);
  stream.pause();
  stream.end(resultOutputRequest(jobId, 0));
  return { stream };
}
