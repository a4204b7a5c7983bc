// A task output stored by reference (TaskResult.output_ref): read with GetResultOutput in chunks
// of at most 1 MiB into one buffer of its size, then checked against its sha256. So a result of
// any size reaches a client with gRPC's default 4 MiB receive limit.
import * as grpc from "@grpc/grpc-js";
import { createHash } from "node:crypto";
import { DistributeXError } from "../common/errors.js";
import type { DistributeXGrpcClient } from "../common/types.js";
import type { BlobData__Output } from "../generated/proto/distributex/v1/BlobData.js";

export function fetchResultOutputOnce(
  stub: DistributeXGrpcClient,
  metadata: grpc.Metadata,
  req: { jobId: string; taskIndex: number },
  ref: { sha256: string; sizeBytes: string | number },
  timeoutMs: number,
): Promise<Buffer> {
  const size = Number(ref.sizeBytes);
  const fail = (code: grpc.status, details: string) => new DistributeXError(code, details, "GetResultOutput");
  return new Promise((resolve, reject) => {
    const out = Buffer.allocUnsafe(size);
    const hash = createHash("sha256");
    let received = 0;
    let settled = false;
    const settle = (err: DistributeXError | undefined) => {
      if (settled) return;
      settled = true;
      if (err) reject(err);
      else resolve(out);
    };
    const call = stub.GetResultOutput(req, metadata, { deadline: Date.now() + timeoutMs });
    call.on("data", (chunk: BlobData__Output) => {
      if (Number(chunk.offset) !== received || received + chunk.data.byteLength > size) {
        call.cancel();
        return settle(fail(grpc.status.DATA_LOSS, `output chunk at ${chunk.offset} does not follow ${received} or passes the size ${size}`));
      }
      chunk.data.copy(out, received);
      hash.update(chunk.data);
      received += chunk.data.byteLength;
    });
    call.on("error", (err: grpc.ServiceError) => settle(fail(err.code, err.details || err.message)));
    call.on("end", () => {
      if (received !== size) return settle(fail(grpc.status.DATA_LOSS, `output ended after ${received} of ${size} bytes`));
      if (hash.digest("hex") !== ref.sha256) return settle(fail(grpc.status.DATA_LOSS, "output bytes do not match their sha256"));
      settle(undefined);
    });
  });
}
