// TLS channels to a scheduler named by its IP address (127.0.0.1 in every local cluster).
// grpc-js sends the target's host as the TLS server name (SNI); an IP address there is not
// allowed by RFC 6066, so Node warns DEP0123 and will one day drop it. For an IP target the
// channel sends a fixed name instead, and the certificate is checked against the IP by the same
// function Node uses for an IP host (tls.checkServerIdentity: the IP must be one of the
// certificate's IP SANs), so nothing is verified less. Host names are left as they were.
import { isIP } from "node:net";
import tls from "node:tls";
import * as grpc from "@grpc/grpc-js";

/**
 * The SNI sent to IP targets. Under .invalid (RFC 2606) it can never name a real host; the
 * scheduler serves one certificate whatever the SNI, and this name is never what is verified.
 */
export const IP_TARGET_SERVER_NAME = "distx-scheduler.invalid";

/** The host of a gRPC target `host:port`, `[v6]:port` or `dns:///host:port`. */
export function targetHost(address: string): string {
  const hostPort = address.trim().replace(/^(dns:(\/\/[^/]*\/)?|ipv4:|ipv6:)/i, "");
  const v6 = /^\[([^\]]+)\](:\d+)?$/.exec(hostPort);
  if (v6) return v6[1]!;
  const m = /^([^:]+)(:\d+)?$/.exec(hostPort);
  return m ? m[1]! : hostPort;
}

export interface TlsMaterial {
  /** The CA the server's certificate must chain to. */
  ca: Buffer;
  /** A client certificate and its key (mutual TLS: agents), or none. */
  key?: Buffer | null;
  cert?: Buffer | null;
}

/** What a channel to one address needs: credentials and options to merge into the channel's own. */
export interface SecureChannel {
  credentials: grpc.ChannelCredentials;
  options: grpc.ChannelOptions;
}

/** Credentials and the channel options (merge them into the channel's own) for TLS to `address`. */
export function secureChannel(address: string, material: TlsMaterial): SecureChannel {
  const host = targetHost(address);
  const key = material.key ?? null;
  const cert = material.cert ?? null;
  if (!isIP(host)) return { credentials: grpc.credentials.createSsl(material.ca, key, cert), options: {} };
  return {
    // grpc-js hands this function the override name; the address is what must be verified.
    credentials: grpc.credentials.createSsl(material.ca, key, cert, { checkServerIdentity: (_serverName, peer) => tls.checkServerIdentity(host, peer) }),
    options: { "grpc.ssl_target_name_override": IP_TARGET_SERVER_NAME },
  };
}
