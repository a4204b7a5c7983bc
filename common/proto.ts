// Loads the wire contract from proto/ at run time. The TypeScript types come from
// proto-loader-gen-types (npm run gen:proto) so the .proto stays the single source of truth.
import { FLOW_WINDOW_BYTES } from "./flow-window.js";
export { listenWithWideWindows } from "./flow-window.js";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import type { ProtoGrpcType } from "../generated/proto/distributex.js";
import { protoDir, protoFile } from "./paths.js";

export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [],
};

let cached: { definition: protoLoader.PackageDefinition; proto: ProtoGrpcType } | undefined;

export function loadContract(): { definition: protoLoader.PackageDefinition; proto: ProtoGrpcType } {
  if (!cached) {
    const definition = protoLoader.loadSync(protoFile(), { ...PROTO_LOADER_OPTIONS, includeDirs: [protoDir()] });
    const proto = grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;
    cached = { definition, proto };
  }
  return cached;
}

export const v1 = () => loadContract().proto.distributex.v1;

let root: protobuf.Root | undefined;

/**
 * A message type of the contract, for encodings that are not an RPC's (Kafka records). Parsed
 * from the same .proto, once; decode with PROTO_LOADER_OPTIONS to get the generated types' shape.
 */
export function contractMessage(name: string): protobuf.Type {
  root ??= protobuf.loadSync(protoFile(), new protobuf.Root());
  return root.lookupType(`distributex.v1.${name}`);
}

/**
 * The largest gRPC message either side takes or sends. Big data no longer needs big messages:
 * SubmitJobStream carries inputs in ~1 MiB chunks, FetchBlob returns them in 1 MiB chunks,
 * GetResults pages are ~3 MiB. What still travels whole is one task's output on the session (the
 * same 64 MiB a result record may have on Kafka), one kernel module, and a unary SubmitJob, whose
 * task count and bytes are checked on its raw bytes first (submit-precheck.ts) — so a request of
 * tens of MB still gets that check's RESOURCE_EXHAUSTED naming the limit, and anything larger is
 * refused by gRPC from its length prefix, before it is buffered. Was 256 MiB.
 */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** A task output the session can carry: the message limit less room for the update's other fields and framing. */
export const MAX_SESSION_OUTPUT_BYTES = MAX_MESSAGE_BYTES - 64 * 1024;

export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
  "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
  "grpc.keepalive_time_ms": 10_000,
  "grpc.keepalive_timeout_ms": 5_000,
  "grpc.keepalive_permit_without_calls": 1,
  // grpc-js backs off reconnecting a failed channel from 1 s up to 120 s; a call made meanwhile
  // fails at once without trying. Our callers (agents, the typed client) pace their own retries
  // with jittered backoff, so the channel must try again when they ask: without this, an agent
  // whose scheduler failed over came back up to ~30 s after the new one was listening.
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 1000,
  // The typed client's receive window stays HTTP/2's 64 KiB: a client that stops reading a watch
  // or RunJob stream must fill it soon, so that the scheduler's bounded outbox notices and drops
  // the stream (the client resumes as a watch), instead of the scheduler's HTTP/2 session queueing
  // up to a wide window of frames per connection for a reader that is asleep.
};

/**
 * The agent's channel to its scheduler. Assignments carry the task inputs, and with HTTP/2's
 * default 64 KiB receive window the agent answered every ~32 KiB of them with a WINDOW_UPDATE
 * (a frame, a write, and a wake-up on both sides: about one per 32 KiB task). A wider window
 * lets the scheduler's batches flow; what it may have in flight to a node stays bounded by the
 * node's capacity (scheduler/registry.ts), not by this window.
 */
export const AGENT_CHANNEL_OPTIONS: grpc.ChannelOptions = { ...CHANNEL_OPTIONS, "grpc-node.flow_control_window": 2 * FLOW_WINDOW_BYTES };
