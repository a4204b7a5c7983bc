// The server half of the TLS floor in bench/queue/run.ts (BENCH_TLS=1): a bare gRPC unary echo,
// on one port in plain text and one with TLS 1.3 as the scheduler serves it (certificates from
// the cluster PKI code), so the difference is TLS alone, without any DistributeX handler.
import * as grpc from "@grpc/grpc-js";
import { issueServerCertificate } from "../../scheduler/auth/pki.js";

const identity = (b: Buffer) => b;
export const ECHO_SERVICE: grpc.ServiceDefinition = {
  Echo: { path: "/bench.Echo/Echo", requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity, originalName: "Echo" },
};

/** TLS 1.3 only, client certificates requested and not required: the scheduler's settings (scheduler/auth/security.ts). */
class Tls13 extends grpc.ServerCredentials {
  constructor(caPem: string, certPem: string, keyPem: string) {
    super({ requestCert: true, rejectUnauthorized: false }, { ca: caPem, cert: certPem, key: keyPem, minVersion: "TLSv1.3", maxVersion: "TLSv1.3" });
  }
  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

async function main(ca: { certPem: string; keyPem: string }): Promise<void> {
  const server = new grpc.Server();
  server.addService(ECHO_SERVICE, { Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, call.request) });
  const cert = await issueServerCertificate(ca.certPem, ca.keyPem);
  const bind = (creds: grpc.ServerCredentials) =>
    new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", creds, (err, port) => (err ? reject(err) : resolve(port))));
  const plain = await bind(grpc.ServerCredentials.createInsecure());
  const tls = await bind(new Tls13(ca.certPem, cert.certPem, cert.keyPem));
  process.send?.({ plain, tls });
}

if (process.env.ECHO_CA && process.send) await main(JSON.parse(process.env.ECHO_CA) as { certPem: string; keyPem: string });
