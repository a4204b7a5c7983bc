// Outputs by reference, shared by their tests: echo inputs (output = input), a plain gRPC client
// with gRPC's default 4 MiB receive limit that reads a job's results the way any generated client
// would (GetResults pages, then GetResultOutput for each output_ref), and a second node with a
// certificate of its own (a rogue agent) for the security checks.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { randomFillSync } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { join } from "../../agent/identity.js";
import { agentConfigSchema, loadConfig } from "../../common/config.js";
import { createLogger } from "../../common/logger.js";
import { protoDir, protoFile } from "../../common/paths.js";
import { CHANNEL_OPTIONS, v1 } from "../../common/proto.js";
import { secureChannel } from "../../common/secure-channel.js";
import type { AgentServiceGrpcClient } from "../../common/types.js";
import type { TestCluster } from "./cluster.js";

export const MiB = 1024 * 1024;

/** An echo input (and so output) of `bytes` random bytes after a zero spin count. */
export function echoInput(bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  randomFillSync(b);
  b.writeUInt32LE(0, 0);
  return b;
}

interface PlainResult {
  taskIndex: number;
  output: Buffer;
  outputRef: { sha256: string; sizeBytes: string } | null;
}

/**
 * Every output of a job through a stub with no channel options (gRPC's default 4 MiB receive
 * limit). Returns the outputs by task index, the largest message it received, and how many
 * results came by reference.
 */
export async function readWithDefaultClient(c: TestCluster, jobId: string): Promise<{ outputs: Map<number, Buffer>; largestMessage: number; byRef: number }> {
  const def = protoLoader.loadSync(protoFile(), { includeDirs: [protoDir()], longs: String, enums: String, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { distributex: { v1: { DistributeX: grpc.ServiceClientConstructor } } };
  const creds = c.adminToken ? grpc.credentials.createSsl(readFileSync(c.cluster.credentialFiles().caFile)) : grpc.credentials.createInsecure();
  const stub = new pkg.distributex.v1.DistributeX(c.address, creds) as unknown as {
    GetResults(req: object, md: grpc.Metadata, cb: (e: grpc.ServiceError | null, r: { results: PlainResult[]; nextPageToken: string }) => void): void;
    GetResultOutput(req: object, md: grpc.Metadata): grpc.ClientReadableStream<{ offset: string; data: Buffer }>;
    close(): void;
  };
  const md = new grpc.Metadata();
  if (c.adminToken) md.set("authorization", `Bearer ${c.adminToken}`);
  const outputs = new Map<number, Buffer>();
  let largestMessage = 0;
  let byRef = 0;
  let token = "";
  try {
    do {
      const page = await new Promise<{ results: PlainResult[]; nextPageToken: string }>((resolve, reject) =>
        stub.GetResults({ jobId, pageToken: token }, md, (e, r) => (e ? reject(e) : resolve(r))),
      );
      for (const r of page.results) {
        largestMessage = Math.max(largestMessage, r.output.byteLength);
        if (!r.outputRef) {
          outputs.set(r.taskIndex, r.output);
          continue;
        }
        byRef++;
        const parts: Buffer[] = [];
        for await (const chunk of stub.GetResultOutput({ jobId, taskIndex: r.taskIndex }, md)) {
          largestMessage = Math.max(largestMessage, chunk.data.byteLength);
          parts.push(chunk.data);
        }
        outputs.set(r.taskIndex, Buffer.concat(parts));
      }
      token = page.nextPageToken;
    } while (token);
  } finally {
    stub.close();
  }
  return { outputs, largestMessage, byRef };
}

/** Another node of the cluster, with its own certificate from a join token: it holds no task. */
export async function rogueAgent(c: TestCluster): Promise<AgentServiceGrpcClient & grpc.Client> {
  const { token } = await c.client.createJoinToken({ uses: 1 });
  const caFile = c.cluster.credentialFiles().caFile;
  const agentConfig = loadConfig(agentConfigSchema, {
    section: "agent",
    env: {},
    flags: { scheduler: c.address, joinToken: token, ca: caFile, dataDir: mkdtempSync(path.join(os.tmpdir(), "distx-out-rogue-")) },
  });
  const identity = await join(agentConfig, createLogger("agent", "silent"));
  const tls = secureChannel(c.address, { ca: readFileSync(caFile), key: Buffer.from(identity.keyPem), cert: Buffer.from(identity.certPem) });
  return new (v1().AgentService)(c.address, tls.credentials, { ...CHANNEL_OPTIONS, ...tls.options }) as unknown as AgentServiceGrpcClient & grpc.Client;
}

/** One UploadOutput call from `client`: the status it ended with. */
export function uploadAs(
  client: AgentServiceGrpcClient,
  header: { jobId: string; taskIndex: number; attempt: number; nodeId?: string },
  data: Buffer,
  sha256: string,
): Promise<grpc.status> {
  return new Promise((resolve) => {
    const call = client.UploadOutput({ deadline: Date.now() + 10_000 }, (err) => resolve(err ? err.code : grpc.status.OK));
    call.on("error", () => undefined);
    call.write({ header: { ...header, ref: { sha256, sizeBytes: String(data.byteLength) } } });
    for (let off = 0; off < data.byteLength; off += MiB) call.write({ data: data.subarray(off, off + MiB) });
    call.end();
  });
}
