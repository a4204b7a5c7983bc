// SubmitJob's size limits, checked on the request's raw bytes before they are decoded: decoding
// 20 million tasks into objects took the whole heap before any limit could be looked at. A scan
// of the top-level fields counts the tasks and their bytes without allocating anything.
import { resourceExhausted } from "../common/errors.js";
import type { SchedulerConfig } from "../common/config.js";

const TASKS_FIELD = 2; // SubmitJobRequest.tasks (proto/distributex/v1/distributex.proto)
/** A TaskInput's own framing around its data: tag and length, at most 6 bytes. */
const TASK_FRAMING_BYTES = 6;

type Limits = Pick<SchedulerConfig, "maxTasksPerJob" | "maxJobBytes">;

/**
 * Throws RESOURCE_EXHAUSTED when the encoded request holds more tasks, or more input bytes, than
 * the limits allow. Bytes it cannot parse are left to the decoder (which names the fault).
 */
export function precheckSubmitBytes(buf: Uint8Array, limits: Limits): void {
  let pos = 0;
  let tasks = 0;
  let taskBytes = 0;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; shift < 63; shift += 7) {
      if (pos >= buf.length) return NaN;
      const b = buf[pos++]!;
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return value;
    }
    return NaN;
  };
  while (pos < buf.length) {
    const tag = varint();
    if (Number.isNaN(tag)) break;
    const wireType = tag % 8;
    if (wireType === 0) {
      if (Number.isNaN(varint())) break;
    } else if (wireType === 1) pos += 8;
    else if (wireType === 5) pos += 4;
    else if (wireType === 2) {
      const len = varint();
      if (Number.isNaN(len)) break;
      pos += len;
      if (Math.floor(tag / 8) === TASKS_FIELD) {
        tasks++;
        taskBytes += Math.max(0, len - TASK_FRAMING_BYTES);
        if (taskBytes > limits.maxJobBytes) {
          throw resourceExhausted(`job inputs total more than ${limits.maxJobBytes} bytes; the limit is ${limits.maxJobBytes} (maxJobBytes); not retryable: split the job`);
        }
      }
    } else break;
  }
  // Counted to the end (a scan, no allocation) so the answer names the job's real task count.
  if (tasks > limits.maxTasksPerJob) {
    throw resourceExhausted(`job has ${tasks} tasks; the limit is ${limits.maxTasksPerJob} (maxTasksPerJob); not retryable: split the job`);
  }
}
