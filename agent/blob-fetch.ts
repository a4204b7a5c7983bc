// One FetchBlob call: the blob's chunks streamed into a buffer of its size, in order, checked
// against its sha256. The caller (SchedulerLink.fetchBlob) retries what is transient.
import * as grpc from "@grpc/grpc-js";
import { createHash } from "node:crypto";
import type { AgentServiceGrpcClient } from "../common/types.js";
import type { BlobData__Output } from "../generated/proto/distributex/v1/BlobData.js";

export type BlobFetchFailure = { code: number | undefined; message: string };

/** Resolves with undefined once `into` holds the whole blob, or with why it does not. */
export function fetchBlobOnce(
  client: AgentServiceGrpcClient,
  ref: { sha256: string; sizeBytes: number },
  into: Uint8Array,
  use: { jobId: string; taskIndex: number },
): Promise<BlobFetchFailure | undefined> {
  return new Promise((resolve) => {
    const hash = createHash("sha256");
    let received = 0;
    let settled = false;
    const settle = (v: BlobFetchFailure | undefined) => {
      if (settled) return;
      settled = true;
      resolve(v);
    };
    const call = client.FetchBlob({ sha256: ref.sha256, jobId: use.jobId, taskIndex: use.taskIndex }, { deadline: Date.now() + 120_000 });
    call.on("data", (chunk: BlobData__Output) => {
      const offset = Number(chunk.offset);
      if (offset !== received || received + chunk.data.byteLength > into.byteLength) {
        call.cancel();
        return settle({ code: grpc.status.DATA_LOSS, message: `blob chunk at ${offset} does not follow ${received} or passes the size ${into.byteLength}` });
      }
      into.set(chunk.data, received);
      hash.update(chunk.data);
      received += chunk.data.byteLength;
    });
    call.on("error", (err: grpc.ServiceError) => settle({ code: err.code, message: err.details || err.message }));
    call.on("end", () => {
      if (received !== into.byteLength) return settle({ code: grpc.status.DATA_LOSS, message: `blob ended after ${received} of ${into.byteLength} bytes` });
      if (hash.digest("hex") !== ref.sha256) return settle({ code: grpc.status.DATA_LOSS, message: "blob bytes do not match their sha256" });
      settle(undefined);
    });
  });
}
