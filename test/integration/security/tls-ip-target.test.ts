// A scheduler named by its IP address (127.0.0.1 in every local cluster): the client verifies
// the certificate's IP SANs itself and sends no IP as the TLS server name (RFC 6066 forbids it;
// Node warns DEP0123). Real TLS servers on loopback with certificates from the cluster PKI code:
// one with the IP is accepted, ones without it are refused, including one made out for the
// name the client sends as SNI (that name is never what is verified).
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DistributeXClient, DistributeXError } from "../../../client/index.js";
import { IP_TARGET_SERVER_NAME, secureChannel, targetHost } from "../../../common/secure-channel.js";
import { v1 } from "../../../common/proto.js";
import { createCa, issueServerCertificate } from "../../../scheduler/auth/pki.js";

// Registered before any connection: each test file runs in its own process.
const warnings: (Error & { code?: string })[] = [];
process.on("warning", (w) => warnings.push(w));

let ca: { certPem: string; keyPem: string };
const servers: grpc.Server[] = [];

/** A TLS server on `host` answering ListJobs, with a certificate for `names` (the PKI adds localhost, 127.0.0.1, ::1). */
async function serve(host: string, names: string[]): Promise<string> {
  const cert = await issueServerCertificate(ca.certPem, ca.keyPem, names);
  const server = new grpc.Server();
  server.addService(v1().DistributeX.service, {
    ListJobs: (_call: unknown, cb: grpc.sendUnaryData<object>) => cb(null, { jobs: [] }),
  });
  const creds = grpc.ServerCredentials.createSsl(Buffer.from(ca.certPem), [{ cert_chain: Buffer.from(cert.certPem), private_key: Buffer.from(cert.keyPem) }], false);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync(`${host}:0`, creds, (err, p) => (err ? reject(err) : resolve(p))));
  servers.push(server);
  return `${host}:${port}`;
}

async function listJobsAt(address: string): Promise<"ok" | DistributeXError> {
  const client = new DistributeXClient(address, { ca: ca.certPem, token: "unused", retry: false, timeoutMs: 5000 });
  try {
    await client.listJobs();
    return "ok";
  } catch (err) {
    if (err instanceof DistributeXError) return err;
    throw err;
  } finally {
    client.close();
  }
}

beforeAll(async () => {
  ca = await createCa("test CA");
});

afterAll(() => {
  for (const s of servers) s.forceShutdown();
});

describe("TLS to a scheduler named by IP", () => {
  it("verifies the certificate's IP SAN and sends no IP as the server name", async () => {
    expect(await listJobsAt(await serve("127.0.0.1", []))).toBe("ok");
    // 127.0.0.2 is loopback too (all of 127/8 on Linux): accepted only with a certificate naming it.
    expect(await listJobsAt(await serve("127.0.0.2", ["127.0.0.2"]))).toBe("ok");
    expect(warnings.filter((w) => w.code === "DEP0123")).toEqual([]);
  });

  it("refuses a certificate without the IP, even one made out for the name sent as SNI", async () => {
    for (const names of [[], ["distx-scheduler"], [IP_TARGET_SERVER_NAME]]) {
      const r = await listJobsAt(await serve("127.0.0.2", names));
      expect(r).toBeInstanceOf(DistributeXError);
      expect((r as DistributeXError).codeName).toBe("UNAVAILABLE");
      expect((r as DistributeXError).message).toMatch(/IP: 127\.0\.0\.2 is not in the cert's list/);
    }
    expect(warnings.filter((w) => w.code === "DEP0123")).toEqual([]);
  });

  it("leaves host names as they were (no override: the name is the server name and is verified)", () => {
    expect(secureChannel("localhost:7070", { ca: Buffer.from(ca.certPem) }).options).toEqual({});
    expect(secureChannel("127.0.0.1:7070", { ca: Buffer.from(ca.certPem) }).options).toEqual({ "grpc.ssl_target_name_override": IP_TARGET_SERVER_NAME });
    expect(secureChannel("[::1]:7070", { ca: Buffer.from(ca.certPem) }).options).toEqual({ "grpc.ssl_target_name_override": IP_TARGET_SERVER_NAME });
    expect(["127.0.0.1:1", "[::1]:1", "dns:///10.1.2.3:80", "sched.example:443"].map(targetHost)).toEqual(["127.0.0.1", "::1", "10.1.2.3", "sched.example"]);
  });
});
