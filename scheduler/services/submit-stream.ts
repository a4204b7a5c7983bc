// SubmitJobStream: a job sent as a header then task chunks, so no one message holds a whole big
// job. The limits (maxTasksPerJob, maxJobBytes) are enforced chunk by chunk as they arrive: a
// job over them is refused before the rest of it is read, let alone held.
import type * as grpc from "@grpc/grpc-js";
import { invalidArgument, resourceExhausted, toServiceError } from "../../common/errors.js";
import type { SchedulerConfig } from "../../common/config.js";
import type { SubmitJobChunk, SubmitJobRequest } from "../../common/types.js";
import type { SubmitJobResponse } from "../../generated/proto/distributex/v1/SubmitJobResponse.js";
import { callerOf, scopeOf, type Scope } from "../auth/policy.js";
import { refusalOf } from "../submit-precheck.js";

export type SubmitLimits = Pick<SchedulerConfig, "maxTasksPerJob" | "maxJobBytes">;

export function submitJobStream(
  limits: SubmitLimits,
  submit: (req: SubmitJobRequest, scope: Scope) => Promise<SubmitJobResponse>,
): grpc.handleClientStreamingCall<SubmitJobChunk, SubmitJobResponse> {
  return (call, callback) => {
    let header: SubmitJobRequest | undefined;
    const tasks: SubmitJobRequest["tasks"] = [];
    let bytes = 0;
    let answered = false;
    const answer = (err: unknown, res?: SubmitJobResponse) => {
      if (answered) return;
      answered = true;
      call.removeAllListeners("data");
      tasks.length = 0;
      // A chunk refused before decoding carries its status already.
      if (err) callback(refusalOf(err) ?? toServiceError(err));
      else callback(null, res);
    };
    call.on("data", (chunk: SubmitJobChunk) => {
      if (answered) return;
      try {
        if (refusalOf(chunk)) return answer(chunk);
        if (chunk.header) {
          if (header) throw invalidArgument("SubmitJobStream: the header came twice; send it once, first");
          if (chunk.header.tasks.length > 0) throw invalidArgument("SubmitJobStream: the header carries no tasks; send them in task chunks after it");
          header = chunk.header;
        } else if (chunk.tasks) {
          if (!header) throw invalidArgument("SubmitJobStream: the first message must be the header");
          for (const t of chunk.tasks.items) {
            tasks.push(t);
            bytes += t.data.byteLength;
          }
          if (tasks.length > limits.maxTasksPerJob) throw resourceExhausted(`job has more than ${limits.maxTasksPerJob} tasks; the limit is ${limits.maxTasksPerJob} (maxTasksPerJob); not retryable: split the job`);
          if (bytes > limits.maxJobBytes) throw resourceExhausted(`job inputs total more than ${limits.maxJobBytes} bytes; the limit is ${limits.maxJobBytes} (maxJobBytes); not retryable: split the job`);
        }
      } catch (err) {
        answer(err);
      }
    });
    call.on("end", () => {
      if (answered) return;
      if (!header) return answer(invalidArgument("SubmitJobStream: the stream ended without a header"));
      submit({ ...header, tasks }, scopeOf(callerOf(call))).then(
        (res) => answer(null, res),
        (err) => answer(err),
      );
    });
    // The client went away: nothing to answer; drop what arrived.
    call.on("error", () => {
      answered = true;
      tasks.length = 0;
    });
  };
}
