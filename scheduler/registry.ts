// The registry of agents: their profiles, liveness (from heartbeats) and the tasks placed on
// each. It is the one owner of every NodeEntry field: other modules read them, change them only
// through its methods (placement decides where a task goes, addTask counts it there), and learn
// of changes through its typed events (RegistryEvents). test/unit/node-state-owner.test.ts
// checks that no other file in scheduler/ writes a NodeEntry field.
//
// A node that misses heartbeats for `agentTimeoutMs`, or whose session ends, goes DOWN: its
// tasks are released (listed in the "down" event) so they can be placed again elsewhere. A node
// that went DOWN for missed heartbeats while its session stayed open (the agent was paused, or
// the network stalled) comes back READY with its next heartbeat ("recovered"). A node whose
// session ended stays DOWN: its agent registers again as a new node. A READY node whose agent
// backs off for its host's own load (Heartbeat.backing_off) is not ready while it does, and asks,
// past its second threshold, that its unstarted tasks be taken back ("give_back").
import { EventEmitter } from "node:events";
import { randomUUID } from "node:crypto";
import type { HardwareProfile, NodeIn, NodeLoad, SchedulerMessageIn } from "../common/types.js";
import type { PlacementNode } from "./placement/constraints.js";
import type { SealRecipient } from "../common/record-seal.js";

const WINDOW_TICK_MS = 100;
const WINDOW_MAX_FACTOR = 4; // a node's window widens to at most 4 × pipelineWindowMs (in-flight input stays bounded)

export type NodeStateName = "NODE_STATE_READY" | "NODE_STATE_DRAINING" | "NODE_STATE_DOWN";

export interface NodeEntry extends PlacementNode {
  state: NodeStateName;
  profile: HardwareProfile;
  load: NodeLoad | undefined;
  registeredAtMs: number;
  lastHeartbeatMs: number;
  completed: number;
  /** Tasks the node may hold before the pipeline window widens it (workers × (1 + prefetch)). */
  baseCapacity: number;
  /** Smoothed completions per second, for the pipeline window. */
  completionRate: number;
  completedAtLastTick: number;
  /** Its pipeline window (updateWindows); whether dispatch found it full with tasks waiting since the last tick (noteFull); the rate when the window last widened. */
  windowMs: number;
  windowBound: boolean;
  rateAtGrowth: number;
  /** Keys (jobId/index) of tasks placed on this node and not yet finished. */
  tasks: Set<string>;
  /** The release its agent announced. */
  agentVersion: string;
  /** Cores its agent leaves to the host (it runs that many fewer workers). */
  reservedCores: number;
  /** Why its agent backs off for the host's own load ("" when it does not): it takes no new work. */
  backingOff: string;
  send?: (msg: SchedulerMessageIn) => void;
  /** The node certificate's key its Kafka assignments are sealed to (secure clusters; from Register, then each renewal). */
  sealTo?: SealRecipient;
}

/** The registry's events and their arguments; listeners cannot get them wrong. */
export interface RegistryEvents {
  /** The node can take work (its session opened, or it answered again after being DOWN). */
  ready: [node: NodeEntry];
  /** The node's capacity grew (its pipeline window widened). */
  capacity: [node: NodeEntry];
  /** A task placed on the node is no longer counted there (it ended, or was taken off it). */
  task_released: [node: NodeEntry, key: string, completed: boolean];
  load: [node: NodeEntry, load: NodeLoad];
  draining: [node: NodeEntry];
  /** The node's agent began backing off for its host's own load: it is not ready until it stops. */
  backing_off: [node: NodeEntry, reason: string];
  /** The backing-off agent asks that its unstarted tasks be taken back (every heartbeat while it does). */
  give_back: [node: NodeEntry, reason: string];
  /** The node went DOWN; `released` are the tasks it held, no longer counted on it. */
  down: [node: NodeEntry, reason: string, released: readonly string[]];
  /** A DOWN node whose session stayed open sent a heartbeat: it is READY again. */
  recovered: [node: NodeEntry, downForMs: number];
}

export interface RegistryOptions {
  agentTimeoutMs: number;
  prefetchPerWorker: number;
  /** See SchedulerConfig.pipelineWindowMs; 0 or absent: capacity stays workers × (1 + prefetch). */
  pipelineWindowMs?: number;
  /** Upper bound on what the window may grow a node's capacity to. */
  maxTasksPerNode?: number;
  /** Forget DOWN nodes after this long. */
  forgetDownAfterMs?: number;
}

export class NodeRegistry extends EventEmitter<RegistryEvents> {
  private readonly nodes = new Map<string, NodeEntry>();
  /** When each DOWN node went down (for the log when it recovers). */
  private readonly downSince = new Map<string, number>();
  private sweeper?: NodeJS.Timeout;
  private sweepEveryMs = 0;
  private lastSweepMs = 0;
  private windowTimer?: NodeJS.Timeout;
  private lastWindowTick = performance.now();

  constructor(private readonly options: RegistryOptions) {
    super();
  }

  start(): void {
    const every = Math.max(50, Math.min(1000, Math.floor(this.options.agentTimeoutMs / 4)));
    this.sweepEveryMs = every;
    this.lastSweepMs = Date.now();
    this.sweeper = setInterval(() => this.sweep(), every);
    this.sweeper.unref();
    if (this.options.pipelineWindowMs) {
      this.windowTimer = setInterval(() => this.updateWindows(), WINDOW_TICK_MS);
      this.windowTimer.unref();
    }
  }

  stop(): void {
    clearInterval(this.sweeper);
    clearInterval(this.windowTimer);
  }

  /**
   * Little's law: to keep a node busy, the tasks in flight to it must cover its completion rate
   * times the round trip. Capacity = max(base, rate × window), so a node that finishes tiny tasks
   * fast gets a deep pipeline, while slow tasks keep the small base. It grows by ×(window/round
   * trip) per tick until the node's own speed caps the rate. The window itself widens while it is the limit. */
  updateWindows(now = performance.now()): void {
    const windowMs = this.options.pipelineWindowMs ?? 0;
    const dt = now - this.lastWindowTick;
    if (dt <= 0) return;
    this.lastWindowTick = now;
    const cap = this.options.maxTasksPerNode ?? 20_000;
    for (const node of this.nodes.values()) {
      const rate = ((node.completed - node.completedAtLastTick) * 1000) / dt;
      node.completedAtLastTick = node.completed;
      // Rise at once (throughput is waiting on it), decay gently (one slow tick is not a trend).
      node.completionRate = rate >= node.completionRate ? rate : node.completionRate * 0.7 + rate * 0.3;
      // A fixed window settles where the round trip equals it, whatever the node could do: while the node is
      // full with work waiting and the last widening paid off (completions rose), widen it; else narrow it back.
      if (node.windowBound && node.completionRate > node.rateAtGrowth * 1.05) {
        node.windowMs = Math.min(windowMs * WINDOW_MAX_FACTOR, node.windowMs * 1.5);
        node.rateAtGrowth = node.completionRate;
      } else if (!node.windowBound) {
        node.windowMs = Math.max(windowMs, node.windowMs * 0.9);
        node.rateAtGrowth = Math.min(node.rateAtGrowth, node.completionRate);
      }
      node.windowBound = false;
      const capacity = windowMs > 0 ? Math.min(cap, Math.max(node.baseCapacity, Math.ceil((node.completionRate * node.windowMs) / 1000))) : node.baseCapacity;
      if (capacity === node.capacity) continue;
      const grew = capacity > node.capacity;
      node.capacity = capacity;
      if (grew && node.ready) this.emit("capacity", node);
    }
  }

  /** `id`: the node id bound in the agent's certificate; without one (--insecure) a fresh id. */
  register(profile: HardwareProfile, id = `node-${randomUUID().slice(0, 8)}`, agentVersion = "", reservedCores = 0): NodeEntry {
    const workers = Math.max(1, profile.workers);
    const now = Date.now();
    const entry: NodeEntry = {
      id,
      ready: false, // until its session opens
      state: "NODE_STATE_READY",
      profile,
      load: undefined,
      registeredAtMs: now,
      lastHeartbeatMs: now,
      completed: 0,
      tasks: new Set(),
      agentVersion,
      reservedCores,
      backingOff: "",
      yields: profile.niced === true, // absent (an older agent): not niced
      logicalCores: profile.cpu?.logicalCores ?? workers,
      memoryBytes: Number(profile.memoryBytes),
      gpuCount: profile.gpus.length,
      kernelKinds: new Set(profile.kernelKinds.length ? profile.kernelKinds : ["KERNEL_KIND_WASM"]),
      labels: { ...profile.labels },
      capacity: workers * (1 + this.options.prefetchPerWorker),
      baseCapacity: workers * (1 + this.options.prefetchPerWorker),
      completionRate: 0,
      completedAtLastTick: 0,
      windowMs: this.options.pipelineWindowMs ?? 0,
      windowBound: false,
      rateAtGrowth: 0,
      assigned: 0,
      speed: profile.calibration?.opsPerSecond ? profile.calibration.opsPerSecond / 1e9 : 1,
      gpuBackend: profile.gpuBackend ?? "",
    };
    this.nodes.set(id, entry);
    return entry;
  }

  get(id: string): NodeEntry | undefined {
    return this.nodes.get(id);
  }

  all(): NodeEntry[] {
    return [...this.nodes.values()];
  }

  ready(): NodeEntry[] {
    return this.all().filter((n) => n.ready);
  }

  attachSession(id: string, send: (msg: SchedulerMessageIn) => void): NodeEntry | undefined {
    const node = this.nodes.get(id);
    if (!node || node.state === "NODE_STATE_DOWN") return undefined;
    node.send = send;
    node.ready = node.state === "NODE_STATE_READY" && !node.backingOff;
    node.lastHeartbeatMs = Date.now();
    this.emit("ready", node);
    return node;
  }

  heartbeat(id: string, load: NodeLoad | null, draining: boolean, backingOff = "", giveBack = false): void {
    const node = this.nodes.get(id);
    if (!node) return;
    node.backingOff = backingOff;
    if (node.state === "NODE_STATE_DOWN") {
      // Only a node whose session is still open can send one: it was slow, not gone.
      if (!node.send) return;
      this.recover(node, draining);
    }
    node.lastHeartbeatMs = Date.now();
    if (load) {
      node.load = load;
      this.emit("load", node, load);
    }
    if (draining && node.state !== "NODE_STATE_DRAINING") {
      node.state = "NODE_STATE_DRAINING";
      node.ready = false;
      this.emit("draining", node);
    }
    if (node.state === "NODE_STATE_READY" && node.send && node.ready !== !backingOff) {
      node.ready = !backingOff;
      if (node.ready) this.emit("ready", node);
      else this.emit("backing_off", node, backingOff);
    }
    if (backingOff && giveBack && node.state !== "NODE_STATE_DOWN") this.emit("give_back", node, backingOff);
  }

  /**
   * An operator drains the node (the dashboard's action): it takes no new tasks, its running ones
   * finish. The same state an agent reports when it drains itself; false for an unknown or DOWN node.
   */
  drain(id: string): boolean {
    const node = this.nodes.get(id);
    if (!node || node.state === "NODE_STATE_DOWN") return false;
    if (node.state !== "NODE_STATE_DRAINING") {
      node.state = "NODE_STATE_DRAINING";
      node.ready = false;
      this.emit("draining", node);
    }
    return true;
  }

  /** The node's current certificate key (it registered over mTLS, or renewed its certificate). */
  setSealKey(id: string, recipient: SealRecipient): void {
    const node = this.nodes.get(id);
    if (node) node.sealTo = recipient;
  }

  /** A load sample that came another way than the heartbeat (the Kafka load stream). */
  setLoad(id: string, load: NodeLoad): void {
    const node = this.nodes.get(id);
    if (node && node.state !== "NODE_STATE_DOWN") node.load = load;
  }

  /** Sends a message on the node's session, if it has one open (the node, or its id). */
  sendTo(node: NodeEntry | string, msg: SchedulerMessageIn): void {
    (typeof node === "string" ? this.nodes.get(node) : node)?.send?.(msg);
  }

  /** Dispatch found the node full while tasks waited: its window may be the limit (updateWindows). */
  noteFull = (node: NodeEntry): void => void (node.windowBound = true);

  /** Counts a task placed on the node (placement decided; the registry keeps the count). */
  addTask(node: NodeEntry, key: string): void {
    if (!node.tasks.has(key)) {
      node.tasks.add(key);
      node.assigned = node.tasks.size;
    }
  }

  removeTask(nodeId: string, key: string, completed: boolean): void {
    const node = this.nodes.get(nodeId);
    if (!node) return;
    if (node.tasks.delete(key)) {
      node.assigned = node.tasks.size;
      if (completed) node.completed++;
      this.emit("task_released", node, key, completed);
    }
  }

  /** The node's session ended: it is DOWN for good (its agent registers again as a new node). */
  sessionClosed(id: string, reason: string): void {
    const node = this.nodes.get(id);
    if (!node) return;
    node.send = undefined;
    this.markDown(id, reason);
  }

  /**
   * Declares a node down; emits "down" once, with the tasks it held, which it no longer counts.
   * Its session (if still open) is kept, so a heartbeat on it can bring the node back.
   */
  markDown(id: string, reason: string): void {
    const node = this.nodes.get(id);
    if (!node || node.state === "NODE_STATE_DOWN") return;
    node.state = "NODE_STATE_DOWN";
    node.ready = false;
    const released = [...node.tasks];
    node.tasks.clear();
    node.assigned = 0;
    this.downSince.set(id, Date.now());
    this.emit("down", node, reason, released);
  }

  private recover(node: NodeEntry, draining: boolean): void {
    const since = this.downSince.get(node.id) ?? Date.now();
    this.downSince.delete(node.id);
    node.state = draining ? "NODE_STATE_DRAINING" : "NODE_STATE_READY";
    node.ready = !draining && !node.backingOff;
    node.lastHeartbeatMs = Date.now();
    this.emit("recovered", node, Date.now() - since);
    if (node.ready) this.emit("ready", node);
  }

  private sweep(): void {
    const now = Date.now();
    const late = now - this.lastSweepMs - this.sweepEveryMs;
    this.lastSweepMs = now;
    // This process itself was stalled (paused, swapping, a long GC): the agents' heartbeats of
    // that time are still unread in the sockets. Read them before blaming anyone.
    if (late > this.options.agentTimeoutMs / 2) return;
    for (const node of this.nodes.values()) {
      if (node.state !== "NODE_STATE_DOWN" && now - node.lastHeartbeatMs > this.options.agentTimeoutMs) {
        this.markDown(node.id, `no heartbeat for ${now - node.lastHeartbeatMs} ms`);
      } else if (
        node.state === "NODE_STATE_DOWN" &&
        now - node.lastHeartbeatMs > (this.options.forgetDownAfterMs ?? 10 * 60_000)
      ) {
        this.nodes.delete(node.id);
        this.downSince.delete(node.id);
      }
    }
  }

  toProto(node: NodeEntry): NodeIn {
    return {
      nodeId: node.id,
      state: node.state,
      profile: node.profile,
      load: node.load ?? null,
      assignedTasks: node.assigned,
      registeredAtMs: node.registeredAtMs,
      lastHeartbeatMs: node.lastHeartbeatMs,
      completedTasks: String(node.completed),
      agentVersion: node.agentVersion,
      backingOff: node.backingOff,
      reservedCores: node.reservedCores,
    };
  }
}
