// A scheduler that loses the lease (paused, or Redis refused its renewals, for longer than
// leaseTtlMs while a standby took over) must step down to standby, not exit: before, it exited 3
// and a restart was left to a supervisor, so each such outage cost a process and, with no
// supervisor, the cluster's only standby. Real processes: two scheduler CLIs on one Redis lease.
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DistributeXClient } from "../../../client/index.js";
import { LocalCluster, waitForListening } from "../../../cli/local-cluster.js";
import { freePort, repo, sleep, testServices, uniquePrefix, until } from "../../helpers/private-redis.js";

let cluster: LocalCluster | undefined;
afterAll(async () => {
  await cluster?.stop(3000);
});

describe("lease lost", () => {
  it("the old leader steps down to standby, stays up, and leads again when the new one dies", async () => {
    const { redis } = testServices();
    const prefix = uniquePrefix("stepdown");
    cluster = new LocalCluster({ agents: 0, logs: path.join(repo, "test-output", "logs", `stepdown-${prefix}`) });
    const ports = [await freePort(), await freePort()];
    const args = (port: number) => ["scheduler", "--port", String(port), "--state", "redis", "--redis-url", redis, "--redis-prefix", prefix, "--lease-ttl-ms", "1000", "--drain-grace-ms", "0"];
    const a = cluster.spawnProcess("scheduler-a", args(ports[0]!));
    let logA = "";
    a.child.stdout?.on("data", (d: Buffer) => (logA += d.toString()));
    await waitForListening(a, 30_000);
    const b = cluster.spawnProcess("scheduler-b", args(ports[1]!));
    await sleep(1500); // b is up and standing by on the lease

    // A paused past its lease: B takes over.
    a.child.kill("SIGSTOP");
    await waitForListening(b, 30_000);
    a.child.kill("SIGCONT");
    await until("a steps down", async () => logA.includes('"lease_lost"'), 15_000, 100);
    await sleep(2000);
    expect(a.child.exitCode, logA).toBeNull();
    expect(logA).toContain('"standby"');

    // Only B answers now; A does not listen while it stands by.
    const client = new DistributeXClient(ports.map((p) => `127.0.0.1:${p}`).join(","), { retry: { deadlineMs: 30_000 } });
    await client.listJobs(5);

    // B dies: A leads again, in the same process.
    const listeningBefore = logA.split('"event":"listening"').length - 1;
    b.child.kill("SIGKILL");
    await until("a listening again", async () => logA.split('"event":"listening"').length - 1 > listeningBefore, 30_000, 100);
    expect(a.child.exitCode).toBeNull();
    await client.listJobs(5);
    client.close();
  }, 120_000);
});
