// Generic gRPC tools (grpcurl, Postman, generated clients) need server reflection and the
// standard health service. This talks to a real scheduler over loopback with clients built
// only from the public reflection and health protos, as such a tool would.
import { mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { service as healthService } from "grpc-health-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, schedulerConfigSchema } from "../../common/config.js";
import { createLogger } from "../../common/logger.js";
import { repoRoot } from "../../common/paths.js";
import { type SecureChannel, secureChannel } from "../../common/secure-channel.js";
import { Scheduler } from "../../scheduler/scheduler.js";

let scheduler: Scheduler;
let address: string;
let tls: SecureChannel;
// Node's warnings seen by this file's process (each test file runs in its own fork).
const warnings: { code?: string; message: string }[] = [];
const onWarning = (w: Error & { code?: string }) => warnings.push({ code: w.code, message: w.message });
process.on("warning", onWarning);

beforeAll(async () => {
  // Secure by default: its own data dir (PKI), and the tools below verify it against that CA.
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "distx-generic-"));
  const config = loadConfig(schedulerConfigSchema, { section: "scheduler", env: {}, flags: { port: 0, logLevel: "silent", dataDir } });
  scheduler = new Scheduler(config, createLogger("scheduler", "silent"));
  address = await scheduler.start();
  // The project's channel helper: an IP target gets a fixed SNI, the IP is still what is verified.
  tls = secureChannel(address, { ca: readFileSync(path.join(dataDir, "pki", "ca.crt")) });
});

afterAll(async () => {
  await scheduler?.stop(0);
  process.off("warning", onWarning);
});

describe("generic gRPC tooling", () => {
  it("answers the standard health check for the server and each service", async () => {
    const Health = grpc.makeGenericClientConstructor(healthService as grpc.ServiceDefinition, "Health");
    const client = new Health(address, tls.credentials, tls.options);
    const check = (svc: string) =>
      new Promise<{ status: string }>((resolve, reject) =>
        (client as unknown as { Check: (r: object, cb: (e: Error | null, r: { status: string }) => void) => void }).Check({ service: svc }, (e, r) =>
          e ? reject(e) : resolve(r),
        ),
      );
    expect((await check("")).status).toBe("SERVING");
    expect((await check("distributex.v1.DistributeX")).status).toBe("SERVING");
    expect((await check("distributex.v1.AgentService")).status).toBe("SERVING");
    await expect(check("no.such.Service")).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    client.close();
  });

  it("serves reflection: lists the services and returns the descriptor of distributex.v1", async () => {
    const def = protoLoader.loadSync(path.join(repoRoot(), "node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto"), { keepCase: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      grpc: { reflection: { v1: { ServerReflection: new (a: string, c: grpc.ChannelCredentials, o?: grpc.ChannelOptions) => grpc.Client & { ServerReflectionInfo(): grpc.ClientDuplexStream<object, Record<string, unknown>> } } } };
    };
    const client = new pkg.grpc.reflection.v1.ServerReflection(address, tls.credentials, tls.options);
    const ask = (req: object) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const call = client.ServerReflectionInfo();
        call.on("data", (res) => {
          resolve(res);
          call.end();
        });
        call.on("error", reject);
        call.write(req);
      });
    const listed = (await ask({ list_services: "" })) as { list_services_response: { service: { name: string }[] } };
    const names = listed.list_services_response.service.map((s) => s.name);
    expect(names).toEqual(expect.arrayContaining(["distributex.v1.DistributeX", "distributex.v1.AgentService", "grpc.health.v1.Health"]));
    const file = (await ask({ file_containing_symbol: "distributex.v1.DistributeX" })) as { file_descriptor_response: { file_descriptor_proto: Buffer[] } };
    const descriptors = file.file_descriptor_response.file_descriptor_proto.map((b) => Buffer.from(b).toString("latin1"));
    expect(descriptors.some((d) => d.includes("distributex.v1") && d.includes("SubmitJob") && d.includes("WatchJob"))).toBe(true);
    client.close();
  });

  it("reaches the scheduler by IP without Node's DEP0123 (IP address as TLS server name)", async () => {
    // The calls above ran over TLS to 127.0.0.1; warnings are emitted on the next tick.
    await new Promise((r) => setImmediate(r));
    expect(warnings.filter((w) => w.code === "DEP0123")).toEqual([]);
  });
});
