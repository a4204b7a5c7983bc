// SubmitJob's size limits, checked on the request's raw bytes before they are decoded: decoding
// 20 million tasks into objects took the whole heap before any limit could be looked at. A scan
// of the fields counts the tasks and their bytes without allocating anything.
import { resourceExhausted } from "../common/errors.js";
import type { SchedulerConfig } from "../common/config.js";

const SUBMIT_TASKS_FIELD = 2; // SubmitJobRequest.tasks (proto/distributex/v1/distributex.proto)
const SUBMIT_SHARED_INPUTS_FIELD = 12; // SubmitJobRequest.shared_inputs: their bytes count too
const CHUNK_TASKS_FIELD = 2; // SubmitJobChunk.tasks
const TASK_INPUTS_ITEMS_FIELD = 1; // TaskInputs.items
/** A TaskInput's own framing around its data: tag and length, at most 6 bytes. */
const TASK_FRAMING_BYTES = 6;

type Limits = Pick<SchedulerConfig, "maxTasksPerJob" | "maxJobBytes">;

/**
 * Calls `visit` with the start and length of each length-delimited `field` in buf[start, end).
 * Stops at bytes it cannot parse: those are left to the decoder, which names the fault.
 */
function eachField(buf: Uint8Array, start: number, end: number, field: number, visit: (at: number, len: number) => void): void {
  let pos = start;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; shift < 63; shift += 7) {
      if (pos >= end) return NaN;
      const b = buf[pos++]!;
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return value;
    }
    return NaN;
  };
  while (pos < end) {
    const tag = varint();
    if (Number.isNaN(tag)) return;
    const wireType = tag % 8;
    if (wireType === 0) {
      if (Number.isNaN(varint())) return;
    } else if (wireType === 1) pos += 8;
    else if (wireType === 5) pos += 4;
    else if (wireType === 2) {
      const len = varint();
      if (Number.isNaN(len) || pos + len > end) return;
      if (Math.floor(tag / 8) === field) visit(pos, len);
      pos += len;
    } else return;
  }
}

function checkCounts(tasks: number, taskBytes: number, limits: Limits): void {
  if (tasks > limits.maxTasksPerJob) {
    throw resourceExhausted(`job has ${tasks} tasks; the limit is ${limits.maxTasksPerJob} (maxTasksPerJob); not retryable: split the job`);
  }
  if (taskBytes > limits.maxJobBytes) {
    throw resourceExhausted(`job inputs total more than ${limits.maxJobBytes} bytes; the limit is ${limits.maxJobBytes} (maxJobBytes); not retryable: split the job`);
  }
}

/** Throws RESOURCE_EXHAUSTED when an encoded SubmitJobRequest holds more tasks or bytes than allowed. */
export function precheckSubmitBytes(buf: Uint8Array, limits: Limits): void {
  let tasks = 0;
  let taskBytes = 0;
  // Counted to the end (a scan, no allocation) so the answer names the job's real task count.
  eachField(buf, 0, buf.length, SUBMIT_TASKS_FIELD, (_, len) => {
    tasks++;
    taskBytes += Math.max(0, len - TASK_FRAMING_BYTES);
  });
  eachField(buf, 0, buf.length, SUBMIT_SHARED_INPUTS_FIELD, (_, len) => (taskBytes += len));
  checkCounts(tasks, taskBytes, limits);
}

/** The same for one SubmitJobStream chunk: no chunk alone may hold more than a whole job may. */
export function precheckSubmitChunkBytes(buf: Uint8Array, limits: Limits): void {
  let tasks = 0;
  let taskBytes = 0;
  eachField(buf, 0, buf.length, CHUNK_TASKS_FIELD, (at, len) =>
    eachField(buf, at, at + len, TASK_INPUTS_ITEMS_FIELD, (_, itemLen) => {
      tasks++;
      taskBytes += Math.max(0, itemLen - TASK_FRAMING_BYTES);
    }),
  );
  checkCounts(tasks, taskBytes, limits);
}

/** Marks a streamed message its precheck refused: the handler answers with the status instead. */
const REFUSED = Symbol("refused before decoding");

export interface RefusedMessage {
  [REFUSED]: { code: number; details: string };
}

export const refusedMessage = (status: { code: number; details: string }): RefusedMessage => ({ [REFUSED]: status });

/** The status a precheck refused a streamed message with, if it did. */
export function refusalOf(msg: unknown): { code: number; details: string } | undefined {
  return typeof msg === "object" && msg !== null && REFUSED in msg ? (msg as RefusedMessage)[REFUSED] : undefined;
}
