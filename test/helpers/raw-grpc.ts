// A gRPC client for sending raw request bytes to a test cluster's scheduler over its TLS, with
// no send limit of its own: only the server's handling of what arrives is under test.
import * as grpc from "@grpc/grpc-js";
import { readFileSync } from "node:fs";
import { CHANNEL_OPTIONS } from "../../common/proto.js";
import { secureChannel } from "../../common/secure-channel.js";
import type { TestCluster } from "./cluster.js";

export function rawClient(c: TestCluster): grpc.Client {
  const tls = secureChannel(c.address, { ca: readFileSync(c.cluster.credentialFiles().caFile) });
  return new grpc.Client(c.address, tls.credentials, { ...CHANNEL_OPTIONS, ...tls.options, "grpc.max_send_message_length": -1 });
}

/** One unary call with a raw body and, if given, an `authorization` header; resolves with its error (null: OK), never throws. */
export function rawUnary(client: grpc.Client, method: string, body: Buffer, authorization?: string): Promise<grpc.ServiceError | null> {
  const md = new grpc.Metadata();
  if (authorization !== undefined) md.set("authorization", authorization);
  return new Promise((resolve) => client.makeUnaryRequest(method, (b: Buffer) => b, (b: Buffer) => b, body, md, { deadline: Date.now() + 60_000 }, (e) => resolve(e)));
}
