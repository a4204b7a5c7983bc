// HTTP/2 flow-control windows for bulk data (common/flow-window.ts): a scheduler's connections
// take FLOW_WINDOW_BYTES before the sender must wait for a window update, not HTTP/2's 64 KiB.
// This reads a grpc-js field, so the test is what tells a grpc-js upgrade that renamed it.
import http2 from "node:http2";
import { once } from "node:events";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { FLOW_WINDOW_BYTES, listenWithWideWindows } from "../../common/flow-window.js";
import { AGENT_CHANNEL_OPTIONS, CHANNEL_OPTIONS } from "../../common/proto.js";

let server: grpc.Server | undefined;
afterEach(() => server?.forceShutdown());

/** How many bytes a client may send on a fresh connection to a server, once its settings and window updates arrived. */
async function clientSendWindow(widen: boolean): Promise<number> {
  server = new grpc.Server(CHANNEL_OPTIONS);
  const credentials = grpc.ServerCredentials.createInsecure();
  const port = widen
    ? await listenWithWideWindows(server, "127.0.0.1:0", credentials)
    : await new Promise<number>((resolve, reject) => server!.bindAsync("127.0.0.1:0", credentials, (err, p) => (err ? reject(err) : resolve(p))));
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    await once(session, "remoteSettings");
    // The server's window update follows its settings: a ping's answer comes after it.
    await new Promise((resolve) => session.ping(resolve));
    return session.state.remoteWindowSize ?? 0;
  } finally {
    session.close();
  }
}

describe("flow-control windows", () => {
  it("a scheduler's connections open a window of FLOW_WINDOW_BYTES (HTTP/2's default without it)", async () => {
    expect(await clientSendWindow(false)).toBe(65_535);
    server!.forceShutdown();
    expect(await clientSendWindow(true)).toBe(FLOW_WINDOW_BYTES);
  });

  it("the agent's channel asks for a wide window; the typed client's keeps HTTP/2's default (slow readers must be noticed)", () => {
    expect(AGENT_CHANNEL_OPTIONS["grpc-node.flow_control_window"]).toBeGreaterThanOrEqual(FLOW_WINDOW_BYTES);
    expect(CHANNEL_OPTIONS["grpc-node.flow_control_window"]).toBeUndefined();
  });
});
