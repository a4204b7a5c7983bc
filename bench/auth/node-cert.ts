// The cost of authenticating a node (an agent's call: FetchBlob, UploadOutput, the session) on a
// real mutual-TLS connection: nodePrincipal as the scheduler runs it, against the way it was
// done before its per-connection cache (grpc-js's getAuthContext, which builds the peer
// certificate anew, then the expiry parsed from text), timed in alternating rounds on the same
// call in the same run, so machine load hits both alike.
// Run: npm run build:ts && node dist/bench/auth/node-cert.js
import * as grpc from "@grpc/grpc-js";
import type { PeerCertificate } from "node:tls";
import { nodePrincipal, VerifiedTokens, type AuthenticatedCall } from "../../scheduler/auth/authenticate.js";
import { notAfterMsOf } from "../../scheduler/auth/peer-tls.js";
import { createCa, createCsr, issueServerCertificate, nodeIdFromSubjectAltName, signNodeCsr } from "../../scheduler/auth/pki.js";
import { Revocations } from "../../scheduler/auth/revocations.js";
import { MemoryTokenStore } from "../../scheduler/auth/token-stores.js";
import type { Principal } from "../../scheduler/auth/principal.js";

const ROUNDS = 11;
const CALLS = 5000;

const ctx = { insecure: false, tokens: MemoryTokenStore.inMemory(), revocations: Revocations.inMemory(), verified: new VerifiedTokens() };

/** What nodePrincipal did per call before the cache: the certificate from grpc-js, parsed each time. */
function perCallParse(call: AuthenticatedCall, nowMs = Date.now()): Principal | undefined {
  const cert: PeerCertificate | undefined = call.getAuthContext?.()?.sslPeerCertificate;
  if (!cert || !cert.subjectaltname) return undefined;
  const nodeId = nodeIdFromSubjectAltName(cert.subjectaltname);
  if (!nodeId) return undefined;
  if (ctx.revocations.isRevoked(nodeId, cert.serialNumber)) throw new Error("revoked");
  const certNotAfterMs = notAfterMsOf(cert);
  if (!(nowMs < certNotAfterMs)) throw new Error("expired");
  return { kind: "node", nodeId, certSerial: cert.serialNumber.toLowerCase(), certDer: cert.raw, certNotAfterMs };
}

const ca = await createCa("bench CA");
const server = await issueServerCertificate(ca.certPem, ca.keyPem);
const csr = await createCsr();
const node = await signNodeCsr(ca.certPem, ca.keyPem, csr.csrPem, "node-0123456789abcdef");

const raw = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
const service: grpc.ServiceDefinition = {
  Time: { path: "/bench.Auth/Time", requestStream: false, responseStream: false, requestSerialize: raw.serialize, requestDeserialize: raw.deserialize, responseSerialize: raw.serialize, responseDeserialize: raw.deserialize },
};

/** µs per call of each way, median of the rounds after the first (warm-up). */
function timeOnCall(call: AuthenticatedCall): { cached: number; perCall: number; same: boolean } {
  const ways = { cached: () => nodePrincipal(call, ctx), perCall: () => perCallParse(call) };
  const a = ways.cached();
  const b = ways.perCall();
  const same = a?.kind === "node" && b?.kind === "node" && a.nodeId === b.nodeId && a.certSerial === b.certSerial && a.certNotAfterMs === b.certNotAfterMs && !!a.certDer?.equals(b.certDer!);
  const us: Record<keyof typeof ways, number[]> = { cached: [], perCall: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const name of ["perCall", "cached"] as const) {
      const t0 = performance.now();
      for (let i = 0; i < CALLS; i++) ways[name]();
      if (r > 0) us[name].push(((performance.now() - t0) * 1000) / CALLS);
    }
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;
  return { cached: median(us.cached), perCall: median(us.perCall), same };
}

const srv = new grpc.Server();
srv.addService(service, {
  Time: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from(JSON.stringify(timeOnCall(call)))),
});
const port = await new Promise<number>((resolve, reject) =>
  srv.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createSsl(Buffer.from(ca.certPem), [{ cert_chain: Buffer.from(server.certPem), private_key: Buffer.from(server.keyPem) }], true), (e, p) => (e ? reject(e) : resolve(p))),
);
const Client = grpc.makeGenericClientConstructor(service, "Auth");
const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createSsl(Buffer.from(ca.certPem), Buffer.from(csr.keyPem), Buffer.from(node.certPem)), { "grpc.ssl_target_name_override": "localhost" });
const ask = () =>
  new Promise<{ cached: number; perCall: number; same: boolean }>((resolve, reject) =>
    (client as unknown as { Time(req: Buffer, cb: (e: Error | null, r?: Buffer) => void): void }).Time(Buffer.alloc(0), (e, r) => (e ? reject(e) : resolve(JSON.parse(r!.toString()) as { cached: number; perCall: number; same: boolean }))),
  );
// Two calls on the connection: the first reads the certificate into the cache, the second is what every later call costs.
await ask();
const t = await ask();
if (!t.same) throw new Error("the two ways disagree on the principal");
console.log(`node ${process.version}, ${ROUNDS - 1} rounds × ${CALLS} calls on one mutual-TLS call, median per round:`);
console.log(`per-call parse (getAuthContext + Date.parse, as before): ${t.perCall.toFixed(2)} µs per call`);
console.log(`nodePrincipal (this tree):                              ${t.cached.toFixed(2)} µs per call`);
console.log(`ratio: ${(t.perCall / t.cached).toFixed(1)}x less per call`);
client.close();
srv.forceShutdown();
