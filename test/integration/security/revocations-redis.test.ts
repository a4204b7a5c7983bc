// Two schedulers of one Redis namespace (an active one and the standby that takes over, both up
// for the test's length, sharing the cluster CA as a real pair does): a node removed through one
// is refused by the other within REVOCATION_REFRESH_MS (plus a Redis round trip), not only after
// the other restarts. The node is real: it joins through AgentService.Join with a join token and
// calls over mutual TLS with the certificate it got.
import { cpSync, mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import { join, type NodeIdentity } from "../../../agent/identity.js";
import { DistributeXClient } from "../../../client/index.js";
import { agentConfigSchema, loadConfig, schedulerConfigSchema } from "../../../common/config.js";
import { createLogger } from "../../../common/logger.js";
import { CHANNEL_OPTIONS, v1 } from "../../../common/proto.js";
import { secureChannel } from "../../../common/secure-channel.js";
import type { AgentServiceGrpcClient } from "../../../common/types.js";
import { REVOCATION_REFRESH_MS } from "../../../scheduler/auth/revocations.js";
import { openBackends } from "../../../scheduler/backends/factory.js";
import { Scheduler } from "../../../scheduler/scheduler.js";
import { testServices, uniquePrefix } from "../../helpers/services.js";

const started: Scheduler[] = [];
const clients: { close(): void }[] = [];
afterAll(async () => {
  for (const c of clients) c.close();
  for (const s of started) await s.stop(0).catch(() => undefined);
});

/** A scheduler on Redis `prefix`; with `pkiFrom`, it holds that data dir's CA (the HA pair's shared CA). */
async function startScheduler(prefix: string, pkiFrom?: string): Promise<{ address: string; dataDir: string; admin: DistributeXClient }> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "distx-revocations-"));
  if (pkiFrom) cpSync(path.join(pkiFrom, "pki"), path.join(dataDir, "pki"), { recursive: true });
  const config = loadConfig(schedulerConfigSchema, {
    section: "scheduler",
    env: {},
    flags: { port: 0, state: "redis", redisUrl: testServices().redis, redisPrefix: prefix, dataDir, logLevel: "silent", drainGraceMs: 0 },
  });
  const log = createLogger("scheduler", "silent");
  // No lease: both serve at once, so the test sees the moment the second one learns of the removal.
  const { store } = await openBackends(config, log);
  const scheduler = new Scheduler(config, log, { store });
  started.push(scheduler);
  const address = await scheduler.start();
  const admin = new DistributeXClient(address, { ca: path.join(dataDir, "pki", "ca.crt"), token: readFileSync(path.join(dataDir, "admin.token"), "utf8").trim() });
  clients.push(admin);
  return { address, dataDir, admin };
}

/** AgentService over mTLS with the node's certificate. */
function agentClient(address: string, id: NodeIdentity): AgentServiceGrpcClient & grpc.Client {
  const tls = secureChannel(address, { ca: Buffer.from(id.caPem), key: Buffer.from(id.keyPem), cert: Buffer.from(id.certPem) });
  return new (v1().AgentService)(address, tls.credentials, { ...CHANNEL_OPTIONS, ...tls.options }) as unknown as AgentServiceGrpcClient & grpc.Client;
}

/** The status an AgentService call gets with the node's certificate (FetchKernel of a kernel nobody has: NOT_FOUND once authenticated). */
const probe = (client: AgentServiceGrpcClient) =>
  new Promise<grpc.status>((resolve) =>
    client.FetchKernel({ kernelId: "0".repeat(64) }, { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null) => resolve(err ? err.code : grpc.status.OK)),
  );

describe("revocations in Redis", () => {
  it("a node removed through one scheduler is refused by the other within the refresh period", async () => {
    const prefix = uniquePrefix("rev");
    const a = await startScheduler(prefix);
    const b = await startScheduler(prefix, a.dataDir);

    const { token } = await a.admin.createJoinToken({ uses: 1 });
    const agentConfig = loadConfig(agentConfigSchema, {
      section: "agent",
      env: {},
      flags: { scheduler: a.address, joinToken: token, ca: path.join(a.dataDir, "pki", "ca.crt"), dataDir: mkdtempSync(path.join(os.tmpdir(), "distx-revocations-agent-")) },
    });
    const identity = await join(agentConfig, createLogger("agent", "silent"));
    const onA = agentClient(a.address, identity);
    const onB = agentClient(b.address, identity);
    clients.push(onA, onB);
    expect(await probe(onA)).toBe(grpc.status.NOT_FOUND);
    expect(await probe(onB)).toBe(grpc.status.NOT_FOUND);

    await a.admin.removeNode(identity.nodeId);
    const removedAt = Date.now();
    expect(await probe(onA)).toBe(grpc.status.UNAUTHENTICATED);
    let refusedAfterMs = -1;
    while (Date.now() - removedAt < REVOCATION_REFRESH_MS + 5000) {
      if ((await probe(onB)) === grpc.status.UNAUTHENTICATED) {
        refusedAfterMs = Date.now() - removedAt;
        break;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    // The bound: one refresh period, plus a second for a Redis round trip and a busy test machine.
    expect(refusedAfterMs).toBeGreaterThanOrEqual(0);
    expect(refusedAfterMs).toBeLessThan(REVOCATION_REFRESH_MS + 1000);
    // And it stays refused (a later refresh that finds nothing new changes nothing).
    await new Promise((r) => setTimeout(r, REVOCATION_REFRESH_MS + 100));
    expect(await probe(onB)).toBe(grpc.status.UNAUTHENTICATED);
  }, 60_000);
});
