// An agent joining for the first time must ride out a scheduler that is down, restarting or
// standing by, as registration does: the chaos harness found every restarted agent exiting 1
// ("join failed: … ECONNREFUSED") because the join tried only the first scheduler address, once,
// so agents crash-looped for as long as that address was a standby. Real processes: a scheduler
// CLI, an agent CLI given a dead address first, the scheduler down when the agent starts.
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DistributeXClient } from "../../../client/index.js";
import { LocalCluster, waitForListening } from "../../../cli/local-cluster.js";
import { freePort, repo, sleep, until } from "../../helpers/private-redis.js";

let cluster: LocalCluster | undefined;
afterAll(async () => {
  await cluster?.stop(3000);
});

describe("agent join", () => {
  it("tries every scheduler address and waits out a scheduler that is down, then joins", async () => {
    cluster = new LocalCluster({ agents: 0, logs: path.join(repo, "test-output", "logs", `join-retries-${Date.now()}`) });
    const port = await freePort();
    const dead = await freePort(); // nothing listens here (a standby is not listening either)
    const schedulerArgs = ["scheduler", "--port", String(port), "--heartbeat-interval-ms", "200", "--agent-timeout-ms", "2000"];
    const first = cluster.spawnProcess("scheduler", schedulerArgs);
    await waitForListening(first, 30_000); // creates the CA and the local join token
    first.child.kill("SIGKILL");
    await new Promise((r) => first.child.once("exit", r));

    cluster.address = `127.0.0.1:${dead},127.0.0.1:${port}`;
    const agent = cluster.startAgent(0, ["--no-calibrate", "--workers", "1", "--connect-timeout-ms", "0"]);
    let log = "";
    agent.child.stdout?.on("data", (d: Buffer) => (log += d.toString()));
    await until("the agent retrying its join", async () => log.includes('"join_retry"') || agent.child.exitCode !== null, 30_000, 100);
    await sleep(3000); // a few rounds over both addresses
    expect(agent.child.exitCode, log).toBeNull();
    expect(log).toContain('"join_retry"');

    await waitForListening(cluster.spawnProcess("scheduler-again", schedulerArgs), 30_000);
    // LocalCluster registers its CA and admin token for clients of this process.
    const client = new DistributeXClient(`127.0.0.1:${port}`);
    await until("the agent joined and registered", async () => (await client.listNodes()).some((n) => n.state === "NODE_STATE_READY"), 30_000);
    expect(log).toContain(`"scheduler":"127.0.0.1:${port}"`);
    expect(agent.child.exitCode).toBeNull();
    client.close();
  }, 90_000);
});
