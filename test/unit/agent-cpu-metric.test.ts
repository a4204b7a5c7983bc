// distx_agent_cpu_utilization is a fixed window sampled on a timer, so scrapers do not disturb
// each other: before, each scrape reset the window, and eight back-to-back curls on a host at
// 3 % CPU read anything from 0.03 to 1.
import { afterAll, describe, expect, it } from "vitest";
import { AgentMetrics } from "../../agent/metrics.js";
import type { PoolStats } from "../../agent/pool/types.js";

const stats: PoolStats = { size: 1, running: 0, queued: 0, completed: 0, failed: 0, restarts: 0, pipelined: 0, maxInFlight: 1, requeued: 0, messagesSent: 0, messagesReceived: 0, outputBuffersReused: 0, outputPoolBytes: 0 };
const metrics = new AgentMetrics(() => stats, "0.0.0");
afterAll(() => metrics.stop());

async function read(): Promise<number> {
  const text = await metrics.registry.getSingleMetricAsString("distx_agent_cpu_utilization");
  const m = /^distx_agent_cpu_utilization (\S+)$/m.exec(text);
  expect(m, text).not.toBeNull();
  return Number(m![1]);
}

describe("distx_agent_cpu_utilization", () => {
  it("reads the same for any number of scrapers within a window, between 0 and 1", async () => {
    await new Promise((r) => setTimeout(r, 2200)); // one full window
    const values: number[] = [];
    for (let i = 0; i < 8; i++) values.push(await read());
    expect(new Set(values).size).toBe(1);
    expect(values[0]).toBeGreaterThanOrEqual(0);
    expect(values[0]).toBeLessThanOrEqual(1);
  }, 10_000);
});
