// Agent routing is a capability declared on TaskBus, not a method of the concrete Kafka bus the
// scheduler had to depend on: the Kafka bus tells a remote agent where its partition is, the
// in-process bus offers no routing.
import { describe, expect, it } from "vitest";
import type { TaskBus } from "../../../scheduler/backends/bus.js";
import { KafkaBus } from "../../../scheduler/backends/kafka-bus.js";
import { MemoryBus } from "../../../scheduler/backends/memory-bus.js";
import { testServices, uniquePrefix } from "../../helpers/services.js";

describe("TaskBus.agentRouting", () => {
  it("is absent for the in-process bus", () => {
    const bus: TaskBus = new MemoryBus();
    expect(bus.agentRouting).toBeUndefined();
  });

  it("gives a remote agent the Kafka route to its own assignments partition", async () => {
    const topicPrefix = uniquePrefix("route");
    const bus: TaskBus = await KafkaBus.connect({ brokers: [testServices().kafka], topicPrefix, partitions: 2, assignmentPartitions: 4, connectTimeoutMs: 5000 });
    try {
      const route = bus.agentRouting?.routeFor("node-a");
      expect(route?.brokers).toEqual([testServices().kafka]);
      expect(route?.assignmentsTopic.startsWith(topicPrefix)).toBe(true);
      expect(route?.assignmentsPartition).toBeGreaterThanOrEqual(0);
      expect(route?.assignmentsPartition).toBeLessThan(4);
      expect(bus.agentRouting?.routeFor("node-a")).toEqual(route); // one partition per node, every time
    } finally {
      await bus.close();
    }
  });
});
