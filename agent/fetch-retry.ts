// The agent's fetches from its scheduler (kernels, blobs), each retried with capped backoff while
// the failure is transient, for up to FETCH_RETRY_MS; then the attempt fails with a retryable
// code and the scheduler places it again. SchedulerLink supplies the current client.
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "../common/logger.js";
import { fetchErrorCode } from "../common/task-errors.js";
import type { AgentServiceGrpcClient } from "../common/types.js";
import { fetchBlobOnce } from "./blob-fetch.js";
import { TaskFailure } from "./pool/types.js";

/** How long a transient fetch failure is retried on the agent before the attempt fails (retryably). */
export const FETCH_RETRY_MS = 5000;

export interface FetchContext {
  /** The client of the scheduler tried now (it moves on failover). */
  client(): AgentServiceGrpcClient;
  log: Logger;
  /** The agent is stopping: do not retry. */
  closing(): boolean;
}

/**
 * Fetches a kernel's bytes. Transient failures (scheduler or its store unreachable, deadline)
 * are retried here with capped backoff for up to FETCH_RETRY_MS, then reported as
 * KERNEL_FETCH_FAILED, which the scheduler retries within the attempt budget; only "unknown
 * kernel" is INVALID_KERNEL.
 */
export async function fetchKernelRetrying(ctx: FetchContext, kernelId: string, noteName: (name: string | undefined) => void): Promise<Uint8Array> {
  const until = Date.now() + FETCH_RETRY_MS;
  for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
    const got = await new Promise<{ module: Uint8Array } | { code: number | undefined; message: string }>((resolve) =>
      ctx.client().FetchKernel({ kernelId }, { deadline: Date.now() + 30_000 }, (err, res) =>
        err || !res
          ? resolve({ code: err?.code, message: err?.details || err?.message || "empty reply" })
          : (noteName(res.info?.name), resolve({ module: res.module })),
      ),
    );
    if ("module" in got) return got.module;
    const code = fetchErrorCode(got.code);
    if (code !== "KERNEL_FETCH_FAILED" || ctx.closing() || Date.now() + delay > until) {
      throw new TaskFailure(code, `cannot fetch kernel ${kernelId}: ${got.message}`);
    }
    ctx.log.warn({ event: "kernel_fetch_retry", kernelId, err: got.message, retryInMs: delay }, "kernel fetch failed; retrying");
    await new Promise((r) => setTimeout(r, delay));
  }
}

/**
 * Streams a blob (an input by reference, a shared input) into `into`, checking its size and
 * sha256 (blob-fetch.ts). Transient failures are retried like kernel fetches; what still fails
 * is INTERNAL (transient: the scheduler places the task again).
 */
export async function fetchBlobRetrying(ctx: FetchContext, ref: { sha256: string; sizeBytes: number }, into: Uint8Array, use: { jobId: string; taskIndex: number }): Promise<void> {
  const until = Date.now() + FETCH_RETRY_MS;
  for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
    const failure = await fetchBlobOnce(ctx.client(), ref, into, use);
    if (!failure) return;
    if (failure.code !== grpc.status.UNAVAILABLE && failure.code !== grpc.status.DEADLINE_EXCEEDED) {
      throw new TaskFailure("INTERNAL", `cannot fetch input ${ref.sha256.slice(0, 12)}… of task ${use.jobId}/${use.taskIndex}: ${failure.message}`);
    }
    if (ctx.closing() || Date.now() + delay > until) throw new TaskFailure("INTERNAL", `cannot fetch input ${ref.sha256.slice(0, 12)}…: ${failure.message}`);
    ctx.log.warn({ event: "blob_fetch_retry", sha256: ref.sha256, err: failure.message, retryInMs: delay }, "blob fetch failed; retrying");
    await new Promise((r) => setTimeout(r, delay));
  }
}
