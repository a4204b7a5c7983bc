// GetResults pages bounded in bytes, with an opaque next-page token: a client with gRPC's default
// 4 MiB receive limit can read every result of any job.
import { invalidArgument } from "../../common/errors.js";
import type { StoredResult } from "../backends/types.js";
import { logBytes } from "../../common/kernel-log.js";

/** Below gRPC's default 4 MiB receive limit, with room for the message's own framing. */
export const RESULTS_PAGE_BYTES = 3 * 1024 * 1024;
/** Per result on the wire besides its output and error text: index, state, node id, numbers, tags. */
const RESULT_OVERHEAD_BYTES = 128;
/** Task indices read from the store at a time: a page never holds many results beyond its budget. */
const READ_WINDOW = 8;

export interface ResultsPage {
  results: StoredResult[];
  nextPageToken: string;
}

/** The bytes a result takes in a GetResultsResponse, near enough to keep a page under its budget. */
function resultWireBytes(r: StoredResult): number {
  return r.output.byteLength + r.nodeId.length + (r.error ? JSON.stringify(r.error).length : 0) + logBytes(r.logs) + RESULT_OVERHEAD_BYTES;
}

/** A page token names where the next page starts and where the requested range ends. */
const encodeToken = (next: number, end: number) => Buffer.from(`r1:${next}:${end}`).toString("base64url");

function decodeToken(token: string, taskCount: number): { start: number; end: number } {
  const m = /^r1:(\d+):(\d+)$/.exec(Buffer.from(token, "base64url").toString());
  const start = m ? Number(m[1]) : NaN;
  const end = m ? Number(m[2]) : NaN;
  if (!m || start > end || end > taskCount) throw invalidArgument("page_token is not one this job's GetResults returned; start again without it");
  return { start, end };
}

/**
 * One page of a job's results from task index `offset` (or the token's), in index order, up to
 * `budget` bytes; a single result larger than the budget comes alone.
 */
export async function resultsPage(
  read: (offset: number, limit: number) => Promise<StoredResult[]>,
  req: { offset: number; limit: number; pageToken: string },
  taskCount: number,
  budget = RESULTS_PAGE_BYTES,
): Promise<ResultsPage> {
  const { start, end } = req.pageToken
    ? decodeToken(req.pageToken, taskCount)
    : { start: Math.min(req.offset, taskCount), end: req.limit ? Math.min(taskCount, req.offset + req.limit) : taskCount };
  const results: StoredResult[] = [];
  let bytes = 0;
  for (let from = start; from < end; from += READ_WINDOW) {
    for (const r of await read(from, Math.min(READ_WINDOW, end - from))) {
      const size = resultWireBytes(r);
      if (results.length > 0 && bytes + size > budget) return { results, nextPageToken: encodeToken(r.taskIndex, end) };
      results.push(r);
      bytes += size;
    }
  }
  return { results, nextPageToken: "" };
}
