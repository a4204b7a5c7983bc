// HTTP/2 flow-control windows sized for bulk data. Inputs, blobs and result pages travel in
// ~1 MiB messages; with HTTP/2's default 64 KiB windows each MiB takes ~32 window round trips,
// every one waiting on the receiver's event loop, so on a busy host the transfer is bound by
// those waits, not by bytes. A window is still a bound: a receiver that stops reading holds at
// most this much per stream (and per connection) before the sender's writes stop draining.
import type http2 from "node:http2";
import type * as grpc from "@grpc/grpc-js";

export const FLOW_WINDOW_BYTES = 4 * 1024 * 1024;

/** The per-stream window a server advertises (its receive side: SubmitJobStream, uploads). */
export const SERVER_HTTP2_SETTINGS = { settings: { initialWindowSize: FLOW_WINDOW_BYTES } };

/**
 * Widens each accepted connection's own window to FLOW_WINDOW_BYTES: the stream setting above
 * does not change it, and all streams of a connection share it. grpc-js offers this for
 * channels (grpc-node.flow_control_window) but not for servers, so its HTTP/2 servers are found
 * by their field; if a grpc-js release renames it, connections keep the default window.
 */
export function widenServerConnectionWindows(server: grpc.Server): void {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map)) return;
  for (const h2 of servers.keys() as IterableIterator<http2.Http2Server>) {
    if (typeof h2?.on !== "function" || watched.has(h2)) continue;
    watched.add(h2);
    h2.on("session", (session: http2.ServerHttp2Session) => {
      // Sent as a WINDOW_UPDATE right after the server's first SETTINGS.
      if (!session.destroyed) session.setLocalWindowSize(FLOW_WINDOW_BYTES);
    });
  }
}

const watched = new WeakSet<object>();

/** server.bindAsync as a promise of the port, the server's connections then widened (above). */
export function listenWithWideWindows(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(address, credentials, (err, port) => {
      if (err) return reject(err);
      widenServerConnectionWindows(server);
      resolve(port);
    }),
  );
}
