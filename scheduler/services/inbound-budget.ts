// Request bytes held while messages arrive, bounded across all calls. grpc-js buffers each
// request message whole before anything sees it (up to the 64 MiB message limit), per stream,
// on as many streams as callers open: twenty authenticated callers sending large requests at once
// could hold over a gigabyte before any handler ran. This budget counts, over all calls, the
// whole size of every message larger than a small allowance that is under way, from its length
// prefix (read before its body): one that would take the total over the budget is refused there,
// unread (UNAVAILABLE, saying a retry is safe); the ones let in can always complete, and one
// whose bytes stop coming gives its claim back after outputStallMs. Small messages (sessions,
// heartbeats, chunks of streamed uploads) are not counted and always go through.
//
// grpc-js has no hook between a stream's data and its message decoder; the decoder is reached
// through internals (the call under the interceptors, grpc-js 1.10+), as stream-reset.ts does.
// If an upgrade moves them, nothing is counted and test/e2e/limits/inbound-budget.test.ts fails.
import * as grpc from "@grpc/grpc-js";
import { constants as h2 } from "node:http2";
import { findInCallChain } from "./call-chain.js";

/** grpc-js's StreamDecoder, as far as this file reads and wraps it. */
interface RequestDecoder {
  maxReadMessageLength: number;
  readState: number;
  readMessageSize: number;
  readMessageRemaining: number;
  write(data: Buffer): Buffer[];
}
/** The call under the interceptors: its decoder, its limit and its HTTP/2 stream. */
interface BaseCall {
  decoder: RequestDecoder;
  maxReceiveMessageSize: number;
  stream: { once(event: "close", listener: () => void): unknown; close(code: number): void; closed: boolean };
}

const READING_MESSAGE = 2;

/** The call under the interceptors, if grpc-js's internals are where this file expects them. */
export function baseCallOf(call: grpc.ServerInterceptingCallInterface): BaseCall | undefined {
  return findInCallChain(call, (c) => {
    const decoder = (c as { decoder?: Partial<RequestDecoder> }).decoder;
    return decoder && typeof decoder.write === "function" && typeof decoder.readState === "number" && "maxReceiveMessageSize" in c && "stream" in c ? (c as BaseCall) : undefined;
  });
}

const MiB = 1024 * 1024;

/** What the metrics read, over every budget in this process (one per scheduler). */
export const inboundRequests = { heldBytes: 0, refused: 0, stalled: 0 };

export class InboundBudget {
  /** Whole sizes of the large request messages under way, over all calls. */
  private held = 0;

  constructor(
    readonly capacityBytes: number,
    /**
     * A large message whose bytes stop coming for this long gives its claim back and its call is
     * ended (outputStallMs): a claim holds no memory, but it does keep other large messages out.
     */
    readonly stallMs = 60_000,
    /** A message no larger than this is never refused (sessions, heartbeats, streamed chunks). */
    readonly allowanceBytes = 2 * MiB,
  ) {}

  readonly interceptor: grpc.ServerInterceptor = (_method, call) => {
    const base = baseCallOf(call);
    if (base) this.track(base, (details) => call.sendStatus({ code: grpc.status.UNAVAILABLE, details }));
    return new grpc.ServerInterceptingCall(call);
  };

  private track(base: BaseCall, refuse: (details: string) => void): void {
    const decoder = base.decoder;
    const write = decoder.write.bind(decoder);
    /** The whole size of the message this call has under way, as counted in `held`. */
    let mine = 0;
    /** Armed while a large message is under way; every chunk of it puts it back. */
    let stallTimer: NodeJS.Timeout | undefined;
    const giveBack = () => {
      this.take(-mine);
      mine = 0;
      clearTimeout(stallTimer);
      stallTimer = undefined;
    };
    const stalled = () => {
      inboundRequests.stalled++;
      const size = mine;
      giveBack();
      refuse(`no bytes of this ${Math.round(size / MiB)} MiB request message arrived for ${this.stallMs} ms (outputStallMs); it was dropped unused, retrying it is safe`);
      // The status alone would leave the stream open for as long as its sender stays silent.
      if (!base.stream.closed) base.stream.close(h2.NGHTTP2_CANCEL);
    };
    decoder.write = (data: Buffer): Buffer[] => {
      const wasReading = decoder.readState === READING_MESSAGE;
      const messages = write(data);
      const reading = decoder.readState === READING_MESSAGE;
      // Still part-way through the message already counted: nothing changes but the stall clock.
      if (wasReading && reading && messages.length === 0) {
        stallTimer?.refresh();
        return messages;
      }
      giveBack();
      if (!reading) return messages;
      // A new message's length prefix was just read (its first bytes at most are held): count
      // its whole size now, first come first served, so the ones let in can always complete.
      const size = decoder.readMessageSize;
      if (size <= this.allowanceBytes) return messages;
      if (this.held + size > this.capacityBytes) {
        inboundRequests.refused++;
        // UNAVAILABLE, not RESOURCE_EXHAUSTED: the condition passes, and clients (ours included)
        // retry UNAVAILABLE with backoff. The call ends here; grpc-js drops its further frames.
        refuse(
          `the scheduler is already receiving ${Math.round(this.held / MiB)} MiB of requests (maxInboundBytes ${Math.round(this.capacityBytes / MiB)} MiB): ` +
            `this message of ${Math.round(size / MiB)} MiB was refused unread; retrying it is safe`,
        );
        return [];
      }
      mine = size;
      this.take(size);
      stallTimer = setTimeout(stalled, this.stallMs);
      stallTimer.unref();
      return messages;
    };
    base.stream.once("close", giveBack);
  }

  private take(bytes: number): void {
    this.held += bytes;
    inboundRequests.heldBytes += bytes;
  }
}
