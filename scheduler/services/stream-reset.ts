// Ending a server stream whose client reads nothing. grpc-js ends a call by sending its status
// as trailers, and those queue behind the data the client's flow-control window holds back: for
// a client that never reads, neither a status we send nor grpc-js's own handling of the call's
// deadline ever leaves, and the call (with its buffered chunk) stays until the connection closes.
// RST_STREAM is not flow-controlled, so resetting the HTTP/2 stream ends it at once; grpc-js
// then sees the stream close and cancels the call. The stream is reached through grpc-js
// internals (server call → interceptors' nextCall → .stream, grpc-js 1.10+); the tests that stall
// a reader (outputs-stalled-reader) fail if an upgrade moves it.
import { constants } from "node:http2";
import { findInCallChain } from "./call-chain.js";

interface ResettableStream {
  close(code: number): void;
  closed: boolean;
}

function isResettable(s: unknown): s is ResettableStream {
  return typeof s === "object" && s !== null && typeof (s as { close?: unknown }).close === "function" && typeof (s as { closed?: unknown }).closed === "boolean" && "rstCode" in s;
}

/** Resets the HTTP/2 stream under a grpc-js server call (RST_STREAM CANCEL); false if it was not found. */
export function resetServerStream(call: object): boolean {
  const stream = findInCallChain((call as { call?: unknown }).call, (c) => {
    const s = (c as { stream?: unknown }).stream;
    return isResettable(s) ? s : undefined;
  });
  if (!stream) return false;
  if (!stream.closed) stream.close(constants.NGHTTP2_CANCEL);
  return true;
}

/** Milliseconds until the call's deadline (Infinity without one). */
export function untilDeadline(call: { getDeadline(): Date | number }): number {
  const d = call.getDeadline();
  const at = d instanceof Date ? d.getTime() : d;
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : Infinity;
}
