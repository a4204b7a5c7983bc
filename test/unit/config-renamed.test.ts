// The scheduler's "queue" setting selected the bus (the ready queue is always in memory); it is
// now "bus". The old name still works from a file, the environment or a flag, with a deprecation
// message naming where it came from; the new name wins when both are given.
import { describe, expect, it } from "vitest";
import { loadConfig, schedulerConfigSchema } from "../../common/config.js";

function load(options: { env?: NodeJS.ProcessEnv; flags?: Record<string, unknown> }): { bus: string; messages: string[] } {
  const messages: string[] = [];
  const config = loadConfig(schedulerConfigSchema, { section: "scheduler", env: options.env ?? {}, flags: options.flags ?? {}, onDeprecated: (m) => messages.push(m) });
  return { bus: config.bus, messages };
}

describe("the bus setting, once called queue", () => {
  it("defaults to memory with no message", () => {
    expect(load({})).toEqual({ bus: "memory", messages: [] });
  });

  it("takes --bus and DISTX_BUS without a message", () => {
    expect(load({ flags: { bus: "kafka" } })).toEqual({ bus: "kafka", messages: [] });
    expect(load({ env: { DISTX_BUS: "kafka" } })).toEqual({ bus: "kafka", messages: [] });
  });

  it("still takes --queue and DISTX_QUEUE, saying the new name and where the old one came from", () => {
    const flag = load({ flags: { queue: "kafka" } });
    expect(flag.bus).toBe("kafka");
    expect(flag.messages).toEqual([expect.stringMatching(/setting "queue" \(flag --queue\) is now "bus"/)]);
    const env = load({ env: { DISTX_QUEUE: "kafka" } });
    expect(env.bus).toBe("kafka");
    expect(env.messages).toEqual([expect.stringMatching(/setting "queue" \(env DISTX_QUEUE\) is now "bus"/)]);
  });

  it("lets the new name win over the old when both are given at the same level", () => {
    expect(load({ env: { DISTX_QUEUE: "kafka", DISTX_BUS: "memory" } }).bus).toBe("memory");
  });

  it("checks an old-name value like a new-name one", () => {
    expect(() => load({ flags: { queue: "rabbit" } })).toThrow(/bus: .*\(got "rabbit" from flag --queue\)/s);
  });
});
