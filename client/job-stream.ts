// Following one job's event stream (WatchJob, RunJob) to its end: outcomes exactly once across
// resumed streams, and a clean end (no RST_STREAM) after the final event.
import * as grpc from "@grpc/grpc-js";
import { DistributeXError } from "../common/errors.js";
import type { Job, JobEvent } from "../common/types.js";
import { TERMINAL_JOB_STATES } from "../common/types.js";
import { backoffDelay, isSafeToRetry, OutcomeLedger, type RetryOptions } from "./retry.js";

export interface WatchOptions {
  /** Only task outcomes (SUCCEEDED, FAILED, CANCELLED) and job snapshots. */
  finalOnly?: boolean;
  /** Stops the watch: the stream is cancelled and the iteration ends. */
  signal?: AbortSignal;
}

/** What a followed stream needs from its client: the retry policy, and its failover. */
export interface FollowLink {
  readonly retry: Required<RetryOptions> | undefined;
  isClosed(): boolean;
  /** Moves to the next scheduler address (after UNAVAILABLE). */
  failover(): void;
}

/** Iterates a job's events to its final snapshot; that snapshot, or undefined if none came. */
export async function lastJob(events: AsyncGenerator<JobEvent>, onEvent: (ev: JobEvent) => void): Promise<Job | undefined> {
  let last: Job | undefined;
  for await (const ev of events) {
    onEvent(ev);
    if (ev.job) last = ev.job;
    if (last && TERMINAL_JOB_STATES.has(last.state)) return last;
  }
  return undefined;
}

/** One job's events over streams `open` makes, resumed after a break (WatchJob's and RunJob's loop). */
export async function* followJob(open: (resume: boolean, seen: Buffer) => grpc.ClientReadableStream<unknown>, options: WatchOptions, rpc: string, link: FollowLink): AsyncGenerator<JobEvent> {
  // Outcomes seen so far: a resumed stream skips them (the server is told, and any the server
  // sends again in a race are dropped here), so each task's outcome is yielded exactly once.
  const seen = new OutcomeLedger();
  let until = Date.now() + (link.retry?.deadlineMs ?? 0);
  let askedForMissing = false;
  // Whether this watch saw the job unfinished: only then does it owe every outcome (a watch of
  // a job that had already ended gets its final snapshot only).
  let followedLive = false;
  for (let n = 0; ; n++) {
    if (options.signal?.aborted) return;
    // Only a watch that saw the job running resumes; one whose earlier streams delivered
    // nothing is a fresh watch (else a job that ended meanwhile would replay outcomes before
    // the first snapshot this watcher ever saw).
    const resume = followedLive;
    const stream = open(resume, seen.bitmap());
    const abort = () => stream.cancel();
    options.signal?.addEventListener("abort", abort);
    let ended = false;
    try {
      // Leaving this loop early (the caller stops at the final event) must not destroy the
      // stream: it is left to end by itself (see finally).
      for await (const ev of stream.iterator({ destroyOnReturn: false }) as AsyncIterable<JobEvent>) {
        const tasks = ev.tasks ? ev.tasks.items : ev.task ? [ev.task] : [];
        for (const task of tasks) {
          if (!seen.admit(task)) continue;
          yield { jobId: ev.jobId, atMs: ev.atMs, task, event: "task" } satisfies JobEvent;
        }
        if (ev.job) {
          if (TERMINAL_JOB_STATES.has(ev.job.state)) {
            // The final snapshot closes the watch only once every task's outcome has been
            // yielded; if some are missing (a stream that ended early), ask once more for them
            // (a resumed watch of a finished job replays the outcomes it has not seen).
            if (followedLive && seen.count < ev.job.taskCount && !askedForMissing) {
              askedForMissing = true;
              break;
            }
            ended = true;
          } else followedLive = true;
          yield ev;
        }
        // Progress: the retry budget counts from the last message received; the backoff
        // restarts only after new outcomes (a stream that ends at once keeps backing off).
        until = Date.now() + (link.retry?.deadlineMs ?? 0);
        if (tasks.length > 0) n = 0;
      }
      if (ended || !link.retry) return;
    } catch (err) {
      const e = err as grpc.ServiceError;
      if (e.code === grpc.status.CANCELLED && options.signal?.aborted) return;
      if (typeof e.code !== "number") throw err;
      const mapped = new DistributeXError(e.code, e.details || e.message, rpc);
      // RESOURCE_EXHAUSTED here: the scheduler dropped this watch for falling behind; resuming is safe.
      const fellBehind = e.code === grpc.status.RESOURCE_EXHAUSTED;
      if (!link.retry || link.isClosed() || !(isSafeToRetry(e.code) || fellBehind) || Date.now() > until) throw mapped;
      if (e.code === grpc.status.UNAVAILABLE) link.failover();
    } finally {
      options.signal?.removeEventListener("abort", abort);
      // The loop's iterator has let go of the stream: an error from here on (the CANCELLED that
      // cancel() itself causes) must not be an unhandled 'error' event.
      stream.on("error", () => undefined);
      if (ended) letStreamEnd(stream);
      else stream.cancel();
    }
    // The stream broke or ended early (the scheduler went away): resume from what was seen.
    if (!link.retry || Date.now() > until) return;
    await new Promise((r) => setTimeout(r, backoffDelay(link.retry!, n)));
  }
}

/**
 * After the final event the scheduler ends the stream itself, one write later. Cancelling it
 * before its trailers arrive would send an RST_STREAM per watch, and the scheduler's HTTP/2 layer
 * (nghttp2's rapid-reset guard) answers a client resetting more than ~33 streams a second, after
 * a burst of 1000, with GOAWAY(INTERNAL_ERROR): every call in flight on the connection fails. So
 * the stream is read to its end in the background, and cancelled only if it never ends.
 */
function letStreamEnd(stream: grpc.ClientReadableStream<unknown>): void {
  const timer = setTimeout(() => stream.cancel(), STREAM_END_GRACE_MS);
  timer.unref();
  stream.on("error", () => undefined);
  stream.once("status", () => clearTimeout(timer));
  stream.resume();
}
const STREAM_END_GRACE_MS = 5_000;
