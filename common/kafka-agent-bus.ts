// The agents' side of the Kafka bus for agents in this process (tests, benches): each node's
// assignments through its own KafkaAgentLink, as a remote agent reads them; updates and load
// samples through one producer of its own. A remote agent uses KafkaAgentLink directly.
import type { KafkaSecurity } from "./backend-security.js";
import type { AgentBus, RemoteAgentRoutes } from "./agent-bus.js";
import { KafkaAgentLink } from "./kafka-agent-link.js";
import { BatchingSender, encodeUpdates, kafkaClient, splitByBytes, updateBytes, type LoadSample } from "./kafka-wire.js";
import type { Assignment, Cancellation, TaskUpdateIn } from "./types.js";

export class KafkaAgentBus implements AgentBus {
  private constructor(
    private readonly routes: RemoteAgentRoutes,
    private readonly sender: BatchingSender,
    private readonly security?: KafkaSecurity,
  ) {}

  /** `routes`: the scheduler's bus's agentRouting (what Register tells a remote agent). */
  static async open(routes: RemoteAgentRoutes, security?: KafkaSecurity): Promise<KafkaAgentBus> {
    const kafka = kafkaClient(routes.routeFor("").brokers, "distx-agents", security);
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await producer.connect();
    return new KafkaAgentBus(routes, new BatchingSender(producer), security);
  }

  async subscribeAssignments(nodeId: string, onAssign: (a: Assignment) => void, onCancel?: (c: Cancellation) => void): Promise<{ close(): Promise<void> }> {
    const link = await KafkaAgentLink.open(this.routes.routeFor(nodeId), nodeId, { assign: onAssign, cancel: (c) => onCancel?.(c) }, undefined, undefined, this.security);
    return { close: () => link.close() };
  }

  publishEvents(nodeId: string, updates: TaskUpdateIn[]): void {
    const topic = this.routes.routeFor(nodeId).eventsTopic;
    for (const run of splitByBytes(updates, updateBytes)) this.sender.push({ topic, key: nodeId, value: encodeUpdates(run) });
  }

  publishLoad(sample: LoadSample): void {
    this.sender.push({ topic: this.routes.routeFor(sample.nodeId).loadTopic, key: sample.nodeId, value: Buffer.from(JSON.stringify(sample)) });
  }

  flush(): Promise<void> {
    return this.sender.idle();
  }

  async close(): Promise<void> {
    await this.sender.close();
  }
}
