// What the stalled-reader tests share: a cluster (one agent, one worker, no TLS so a raw HTTP/2
// client can speak to it) whose scheduler resets streams stalled past `stallMs`, and the gRPC
// framing for the requests those raw clients send (grpc-js would read every response message
// into memory whether asked or not, so only raw HTTP/2 keeps a stream's window shut).
import { startTestCluster, type TestCluster } from "./cluster.js";

export function stalledReaderCluster(name: string, stallMs: number): Promise<TestCluster> {
  return startTestCluster(name, {
    agents: 1,
    workersPerAgent: 1,
    insecure: true,
    agentArgs: () => ["--no-calibrate", "--connect-timeout-ms", "0"],
    schedulerArgs: ["--heartbeat-interval-ms", "200", "--agent-timeout-ms", "3000", "--drain-grace-ms", "0", "--output-stall-ms", String(stallMs)],
  });
}

/** One protobuf message body as a gRPC length-prefixed frame (uncompressed). */
export function grpcFrame(body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.byteLength, 1);
  return Buffer.concat([head, body]);
}
