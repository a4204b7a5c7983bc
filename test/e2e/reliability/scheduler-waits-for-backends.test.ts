// A scheduler (re)started while Redis refuses writes or while the broker is unreachable must wait
// for them, not exit: the chaos harness found it exited 1 at start-up ("OOM command not allowed";
// "cannot reach Kafka"), so a supervised standby crash-looped through every backend outage.
// Real processes: the scheduler CLI, a private redis-server, and the shared broker reached through
// a loopback port that refuses connections until the test opens a forwarder on it.
import net from "node:net";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LocalCluster, waitForListening, type ClusterProcess } from "../../../cli/local-cluster.js";
import { freePort, privateRedis, repo, sleep, testServices, uniquePrefix, until, type PrivateRedis } from "../../helpers/private-redis.js";

let cluster: LocalCluster | undefined;
let redis: PrivateRedis | undefined;
let forwarder: net.Server | undefined;
afterAll(async () => {
  await cluster?.stop(3000);
  redis?.stop();
  forwarder?.close();
});

/** A TCP forwarder from `port` to `target` (host:port): the broker becoming reachable. */
function forward(port: number, target: string): Promise<net.Server> {
  const [host, targetPort] = target.split(":");
  const server = net.createServer((inbound) => {
    const outbound = net.connect(Number(targetPort), host);
    inbound.pipe(outbound).pipe(inbound);
    inbound.on("error", () => outbound.destroy());
    outbound.on("error", () => inbound.destroy());
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}

/** The scheduler reports the outage (`event` in its log), and is still waiting, not listening, a few lease periods later. */
async function expectWaiting(scheduler: ClusterProcess, log: () => string, event: string): Promise<void> {
  await until("the scheduler reports the outage", async () => log().includes(`"${event}"`) || scheduler.child.exitCode !== null, 30_000, 100);
  await sleep(4000);
  expect(scheduler.child.exitCode, log()).toBeNull();
  expect(log()).toContain(`"${event}"`);
  expect(log()).not.toContain('"listening"');
}

describe("a scheduler starting during a backend outage", () => {
  it("waits while Redis refuses writes (maxmemory, noeviction), then starts", async () => {
    redis = await privateRedis();
    redis.cli("config", "set", "maxmemory-policy", "noeviction");
    redis.cli("config", "set", "maxmemory", "1");
    cluster = new LocalCluster({ agents: 0, logs: path.join(repo, "test-output", "logs", `backend-wait-redis-${Date.now()}`) });
    const port = await freePort();
    const scheduler = cluster.spawnProcess("scheduler", ["scheduler", "--port", String(port), "--state", "redis", "--redis-url", redis.url, "--redis-prefix", uniquePrefix("wait"), "--lease-ttl-ms", "1000"]);
    let log = "";
    scheduler.child.stdout?.on("data", (d: Buffer) => (log += d.toString()));
    await expectWaiting(scheduler, () => log, "lease_unavailable");
    redis.cli("config", "set", "maxmemory", "0");
    await waitForListening(scheduler, 30_000);
    expect(scheduler.child.exitCode).toBeNull();
  }, 60_000);

  it("waits while the broker is unreachable, then starts; bad credentials still fail at once", async () => {
    const { kafka } = testServices();
    const brokerPort = await freePort(); // nothing listens here yet: connections are refused
    const port = await freePort();
    cluster ??= new LocalCluster({ agents: 0, logs: path.join(repo, "test-output", "logs", `backend-wait-kafka-${Date.now()}`) });
    const args = ["scheduler", "--port", String(port), "--bus", "kafka", "--kafka-brokers", `127.0.0.1:${brokerPort}`, "--kafka-topic-prefix", uniquePrefix("wait")];
    const scheduler = cluster.spawnProcess("scheduler-kafka", args);
    let log = "";
    scheduler.child.stdout?.on("data", (d: Buffer) => (log += d.toString()));
    await expectWaiting(scheduler, () => log, "backend_unavailable");
    forwarder = await forward(brokerPort, kafka);
    await waitForListening(scheduler, 60_000);
    expect(scheduler.child.exitCode).toBeNull();

    // A refusal no retry can fix is still an error at once, naming the setting.
    const bad = cluster.spawnProcess("scheduler-bad", ["scheduler", "--port", String(await freePort()), "--state", "redis", "--redis-url", "redis://nobody:wrong@127.0.0.1:6379", "--redis-prefix", uniquePrefix("bad")]);
    let err = "";
    bad.child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => bad.child.once("exit", r));
    expect(code).toBe(1);
    expect(err).toMatch(/redisUrl: .*(WRONGPASS|NOAUTH|invalid username-password)/i);
  }, 120_000);
});
