// One job's event stream to one caller, for WatchJob and RunJob: the job's snapshot, the outcomes
// of tasks that ended before the stream began, then live events until the final snapshot.
import type * as grpc from "@grpc/grpc-js";
import { taskErrorProto } from "../../common/task-errors.js";
import type { JobEventIn, TaskEventIn } from "../../common/types.js";
import { toJobProto, type SchedulerCore } from "../core.js";
import { isTerminalJob, isTerminalTask, type JobRecord } from "../model.js";
import { WatchEventSender } from "./watch-events.js";
import { WatchOutbox } from "./watch-outbox.js";

/** The job as the wire shows it, with why its queued tasks wait when no node could take them. */
export function withReason(core: SchedulerCore, job: JobRecord) {
  return { ...toJobProto(job), unschedulableReason: core.unschedulableReason(job) };
}

export interface JobStreamOptions {
  /** Which call the stream answers (counted when it is dropped). */
  rpc: "WatchJob" | "RunJob";
  /** Outcomes only, in batches (and job snapshots). */
  finalOnly: boolean;
  /** A resumed watch: `seenOutcomes` (a bitmap by task index) are not sent again. */
  resume: boolean;
  seenOutcomes: Uint8Array;
  /** Replay the outcomes of a job that has already ended (a plain watch of one gets its snapshot only). */
  outcomesOfFinished?: boolean;
}

export function streamJobEvents(core: SchedulerCore, call: grpc.ServerWritableStream<unknown, JobEventIn>, job: JobRecord, opts: JobStreamOptions): void {
  const finalOnly = opts.finalOnly;
  const jobId = job.id;
  let unwatch = (): void => undefined;
  const stop = () => {
    unwatch();
    sender.stop();
  };
  // Bounded in bytes: a watcher that falls behind is told so and dropped (watch-outbox.ts).
  const outbox = new WatchOutbox(call, () => {
    stop();
    core.emit("watch_dropped", opts.rpc);
  });
  const sender = new WatchEventSender(jobId, finalOnly, outbox, () => finish());
  const send = (ev: JobEventIn) => sender.send(ev);
  const finish = () => {
    unwatch();
    call.end();
  };
  call.on("cancelled", stop);
  call.on("error", stop);
  call.on("close", stop);
  // A resumed watch (after a reconnect or failover) names the outcomes it has already seen.
  const seen = opts.resume ? opts.seenOutcomes : Buffer.alloc(0);
  const wasSeen = (i: number) => (i >> 3) < seen.length && (seen[i >> 3]! & (1 << (i & 7))) !== 0;
  const replay = () => {
    // Tasks that ended before this watch began are replayed once with their final state, so a
    // watcher sees every task's outcome however late it subscribed (a small job can finish
    // tasks between SubmitJob's reply and this call), less those a resumed watch has seen.
    // The replay is bounded by the job's size and is not checked against the outbox bound.
    const now = Date.now();
    const pending: TaskEventIn[] = [];
    for (const task of job.tasks) {
      if (!isTerminalTask(task.state) || wasSeen(task.index)) continue;
      const ev: TaskEventIn = { taskIndex: task.index, state: task.state, attempt: task.attempt, nodeId: task.nodeId, error: task.error ? taskErrorProto(task.error) : null, runMs: task.runMs };
      if (finalOnly) pending.push(ev);
      else outbox.write({ jobId, atMs: now, task: ev }, false);
    }
    if (pending.length > 0) outbox.write({ jobId, atMs: now, tasks: { items: pending } }, false);
  };
  if (isTerminalJob(job.state)) {
    // A resumed watch of a job that ended while it was away still gets the outcomes it missed, and
    // RunJob those of a job that ended as it was submitted (every result cached, or a retry).
    if (opts.resume || opts.outcomesOfFinished) replay();
    outbox.write({ jobId, atMs: Date.now(), job: withReason(core, job) }, false);
    call.end();
    return;
  }
  outbox.write({ jobId, atMs: Date.now(), job: withReason(core, job) }, false);
  replay();
  unwatch = core.watchJob(jobId, send);
}
