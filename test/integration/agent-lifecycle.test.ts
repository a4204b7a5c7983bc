// One lifecycle state per agent: the transition table, and a real agent (real scheduler over
// loopback) whose /readyz follows it: ready once registered, connecting when its scheduler goes,
// stopped after a stop that a second call does not run again.
import { afterAll, describe, expect, it } from "vitest";
import { Agent } from "../../agent/agent.js";
import { AgentLifecycle } from "../../agent/lifecycle.js";
import { agentConfigSchema, schedulerConfigSchema } from "../../common/config.js";
import { createLogger } from "../../common/logger.js";
import { Scheduler } from "../../scheduler/scheduler.js";
import { until } from "../helpers/poll.js";

const log = createLogger("test", "error");

describe("AgentLifecycle", () => {
  it("follows the table and ignores transitions it does not allow", () => {
    const life = new AgentLifecycle(log);
    expect(life.state).toBe("starting");
    expect(life.notReady()).toMatch(/starting/);
    expect(life.to("ready")).toBe(false); // not registered yet
    expect(life.to("connecting")).toBe(true);
    expect(life.to("ready")).toBe(true);
    expect(life.notReady()).toBeUndefined();
    expect(life.draining).toBe(false);
    expect(life.to("connecting")).toBe(true); // session lost
    expect(life.notReady()).toMatch(/not connected to the scheduler/);
    expect(life.to("draining")).toBe(true);
    expect(life.draining).toBe(true);
    expect(life.to("ready")).toBe(false); // a reconnect while draining does not make it ready again
    expect(life.to("stopped")).toBe(false); // stopping comes first
    expect(life.to("stopping")).toBe(true);
    expect(life.to("stopped")).toBe(true);
    expect(life.to("draining")).toBe(false);
    expect(life.notReady()).toBe("stopped");
  });
});

describe("an agent's lifecycle on /readyz", () => {
  let scheduler: Scheduler | undefined;
  let agent: Agent | undefined;
  afterAll(async () => {
    await agent?.stop(0);
    await scheduler?.stop(0);
  });

  it("is ready when registered, connecting when the scheduler is gone, stopped after one memoised stop", async () => {
    scheduler = new Scheduler(schedulerConfigSchema.parse({ port: 0 }), log);
    const address = await scheduler.start();
    agent = new Agent(agentConfigSchema.parse({ scheduler: address, workers: 1, calibrate: false, adminPort: 0 }), log);
    expect(agent.state).toBe("starting");
    await agent.start();
    const readyz = async () => {
      const res = await fetch(`http://${agent!.adminAddress}/readyz`);
      return { status: res.status, body: await res.text() };
    };
    expect(agent.state).toBe("ready");
    expect(await readyz()).toEqual({ status: 200, body: "ready\n" });

    await scheduler.stop(0);
    scheduler = undefined;
    await until("the agent connecting", async () => agent!.state === "connecting", 30_000, 50);
    const down = await readyz();
    expect(down.status).toBe(503);
    expect(down.body).toMatch(/connecting: not connected to the scheduler/);

    const first = agent.stop(0);
    expect(agent.stop(0)).toBe(first);
    expect(agent.state).toBe("draining");
    await first;
    expect(agent.state).toBe("stopped");
  });
});
