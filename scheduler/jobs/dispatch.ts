// Dispatch: the loop that takes queued tasks, asks placement where they go, and sends them to
// agents; and taking back tasks a node has not started (dynamic load balancing). Placement
// only decides; the registry counts each placed task on its node (addTask).
import { isTerminalJob, parseTaskKey, taskKeyOf, type JobRecord, type ResourceNeeds, type TaskRecord } from "../model.js";
import { placementNeeds } from "../placement/gpu.js";
import type { PlacementController } from "../placement/controller.js";
import type { NodeEntry } from "../registry.js";
import type { CoreContext } from "./context.js";
import type { TaskStates } from "./task-states.js";

export class Dispatcher {
  private scheduled = false;
  /** Tasks (jobId/index) we asked a node to give back; they are queued again when it confirms. */
  private readonly takingBack = new Set<string>();

  constructor(
    private readonly ctx: CoreContext,
    private readonly states: Pick<TaskStates, "isCommitting" | "setTaskState" | "emitTask">,
    private readonly placement: () => PlacementController,
  ) {}

  /** Starts a dispatch round on the next turn; calls within one turn share it. */
  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.dispatch();
    });
  }

  /** The node answered for a task we asked back (or lost it): true if we had asked for it back. */
  settleTakeBack(key: string): boolean {
    return this.takingBack.delete(key);
  }

  private dispatch(): void {
    const { registry, queue, table } = this.ctx;
    const ready = registry.ready();
    if (ready.length === 0) return;
    // Upper bound on what can be placed now; the strategy decides which nodes (and may place fewer).
    let room = ready.reduce((s, n) => s + Math.max(0, n.capacity - n.assigned), 0);
    for (const jobId of queue.jobs()) {
      const job = table.get(jobId);
      if (!job || isTerminalJob(job.state)) {
        queue.removeJob(jobId);
        continue;
      }
      if (room === 0) return this.noteFull(ready);
      // Tasks of a job are placed as one batch; what does not fit goes back to the queue's front, in order.
      const indexes = this.takePending(job, room);
      const nodes = this.placement().plan({ kernelId: job.kernelId, needs: placementNeeds(job.needs, ready) }, indexes.map((i) => taskKeyOf(job, job.tasks[i]!)));
      for (let k = indexes.length - 1; k >= nodes.length; k--) queue.pushFront({ jobId, taskIndex: indexes[k]! });
      for (let k = 0; k < nodes.length; k++) {
        this.assign(job, job.tasks[indexes[k]!]!, nodes[k]!);
        room--;
      }
    }
    if (room === 0 && queue.size() > 0) this.noteFull(ready);
  }

  /** Every node was full with tasks still queued: the pipeline windows may be what holds them back. */
  private noteFull(ready: NodeEntry[]): void {
    for (const node of ready) if (node.assigned >= node.capacity) this.ctx.registry.noteFull(node);
  }

  /**
   * Up to `max` queued tasks of a job that still wait for placement. Queue entries of tasks that
   * ended meanwhile (a late result from an agent given up on, or one recorded before a restart)
   * are dropped without using up the round: otherwise a round that took only such entries would
   * place nothing, and with nothing running no later event would start another round.
   */
  private takePending(job: JobRecord, max: number): number[] {
    const out: number[] = [];
    while (out.length < max) {
      const taken = this.ctx.queue.take(job.id, max - out.length);
      if (taken.length === 0) break;
      for (const i of taken) {
        const task = job.tasks[i];
        // A late result being stored for a re-queued task: placing it again would only run it twice.
        if (task?.state === "TASK_STATE_PENDING" && !this.states.isCommitting(task)) out.push(i);
      }
    }
    return out;
  }

  /** Tasks placed on `node` that have not started there, oldest first. */
  queuedOn(node: NodeEntry): { key: string; req: { kernelId: string; needs: ResourceNeeds } }[] {
    const out: { key: string; req: { kernelId: string; needs: ResourceNeeds } }[] = [];
    for (const key of node.tasks) {
      if (this.takingBack.has(key)) continue;
      const held = this.ctx.table.task(key);
      if (held && held.task.state === "TASK_STATE_ASSIGNED" && held.task.nodeId === node.id) out.push({ key, req: { kernelId: held.job.kernelId, needs: held.job.needs } });
    }
    return out;
  }

  /**
   * Asks a node to give back tasks it has not started. The agent answers CANCELLED for each
   * (then they are queued again without using an attempt), or a result if one had already
   * started and finished (first result wins, as always).
   */
  takeBack(node: NodeEntry, keys: string[], reason: string): void {
    const byJob = new Map<string, number[]>();
    for (const key of keys) {
      const { jobId, taskIndex } = parseTaskKey(key);
      this.takingBack.add(key);
      const list = byJob.get(jobId) ?? [];
      list.push(taskIndex);
      byJob.set(jobId, list);
    }
    for (const [jobId, taskIndexes] of byJob) this.ctx.registry.sendTo(node, { cancel: { jobId, taskIndexes } });
    this.ctx.log.info({ event: "tasks_taken_back", nodeId: node.id, tasks: keys.length, reason }, "moving queued tasks off a node (behind, or backing off for its host's load)");
  }

  private assign(job: JobRecord, task: TaskRecord, node: NodeEntry): void {
    task.nodeId = node.id;
    this.ctx.registry.addTask(node, taskKeyOf(job, task));
    this.states.setTaskState(job, task, "TASK_STATE_ASSIGNED");
    this.ctx.counters.placements++;
    this.ctx.events.emit("placement", job, task, node);
    this.ctx.registry.sendTo(node, {
      assign: {
        jobId: job.id,
        taskIndex: task.index,
        attempt: task.attempt,
        kernelId: job.kernelId,
        kind: job.needs.kind,
        input: task.input,
        ...(task.inputRef ? { inputRef: { sha256: task.inputRef.sha256, sizeBytes: String(task.inputRef.sizeBytes) } } : {}),
        ...(job.sharedInputs ? { sharedInputs: job.sharedInputs.map((s) => ({ name: s.name, ref: { sha256: s.ref.sha256, sizeBytes: String(s.ref.sizeBytes) } })) } : {}),
        timeoutMs: job.timeoutMs,
        memoryLimitBytes: String(job.needs.memoryBytes),
      },
    });
    this.states.emitTask(job, task);
  }
}
