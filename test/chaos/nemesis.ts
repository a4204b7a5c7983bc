// The nemesis: one fault at a time, chosen from a seeded PRNG (kind, target, duration, quiet gap
// after), each logged as fault-start / fault-end in the history. Every fault is undone before the
// next one begins (killed processes restarted, paused ones resumed, configs restored), and a quiet
// gap follows, so the cluster has the chance to recover that the stall figure measures.
import type { FaultKind, HistoryInput } from "./history.js";
import { FAULT_KINDS } from "./history.js";
import type { Rng } from "./prng.js";
import type { ChaosRig } from "./rig.js";
import type { Workload } from "./workload.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface NemesisOptions {
  rig: ChaosRig;
  workload: Workload;
  rng: Rng;
  record: (e: HistoryInput) => void;
  heartbeatIntervalMs: number;
  agentTimeoutMs: number;
  eventsMaxMessageBytes: number;
  /** Only these kinds (default: all). */
  kinds?: FaultKind[];
  /** Quiet time between faults, ms. */
  quietMs: [number, number];
}

/** How often each kind is drawn: process faults most, the slow broker restart least. */
const WEIGHTS: Record<FaultKind, number> = {
  "kill-agent": 3,
  "pause-agent": 3,
  "kill-scheduler": 2,
  "pause-scheduler": 2,
  "kill-redis": 1,
  "pause-redis": 1,
  "kill-broker": 1,
  "pause-broker": 1,
  "redis-oom": 2,
  "redis-pause-writes": 1,
  "broker-small-max-message": 1,
  "oversized-output": 1,
  "client-disconnect": 3,
};

export class Nemesis {
  private seq = 0;
  private stopped = false;

  constructor(private readonly o: NemesisOptions) {}

  stop(): void {
    this.stopped = true;
  }

  /** Injects faults until `untilMs` (wall clock) or stop(); resolves once the last one is undone. */
  async run(untilMs: number): Promise<void> {
    const kinds = this.o.kinds?.length ? this.o.kinds : FAULT_KINDS;
    const weights = Object.fromEntries(kinds.map((k) => [k, WEIGHTS[k]])) as Partial<Record<FaultKind, number>>;
    const { rng } = this.o;
    while (!this.stopped) {
      await sleep(rng.int(this.o.quietMs[0], this.o.quietMs[1]));
      if (this.stopped || Date.now() >= untilMs) break;
      const kind = rng.weighted(weights);
      await this.inject(kind);
    }
  }

  private async inject(kind: FaultKind): Promise<void> {
    const { rig, rng, record } = this.o;
    const fault = ++this.seq;
    const start = (target: string, detail?: string) => record({ type: "fault-start", fault, kind, target, ...(detail ? { detail } : {}) });
    const end = (target: string, detail?: string) => record({ type: "fault-end", fault, kind, target, ...(detail ? { detail } : {}) });
    const hb = this.o.heartbeatIntervalMs;
    const timeout = this.o.agentTimeoutMs;
    // Half the pauses outlast the agent timeout, so the node is declared DOWN and must come back.
    const pauseMs = () => (rng.float() < 0.5 ? rng.int(300, Math.max(400, timeout - 500)) : rng.int(timeout + 500, timeout + 3000));
    switch (kind) {
      case "kill-agent": {
        const target = rng.pick(rig.agentNames);
        const downMs = rng.int(500, 4000);
        start(target, `kill -9, restart after ${downMs} ms`);
        rig.kill(target);
        await sleep(downMs);
        await rig.restart(target);
        end(target);
        return;
      }
      case "pause-agent": {
        const target = rng.pick(rig.agentNames);
        const ms = pauseMs();
        start(target, `SIGSTOP for ${ms} ms (agent timeout ${timeout} ms, heartbeat ${hb} ms)`);
        rig.signal(target, "SIGSTOP");
        await sleep(ms);
        rig.signal(target, "SIGCONT");
        end(target);
        return;
      }
      case "kill-scheduler":
      case "pause-scheduler": {
        const active = (await rig.activeScheduler()) ?? rig.schedulerNames[0]!;
        const target = rng.float() < 0.8 ? active : rig.schedulerNames.find((s) => s !== active)!;
        if (kind === "kill-scheduler") {
          const downMs = rng.int(500, 4000);
          start(target, `kill -9${target === active ? " (active)" : " (standby)"}, restart after ${downMs} ms`);
          rig.kill(target);
          await sleep(downMs);
          await rig.restart(target);
          end(target);
        } else {
          const ms = pauseMs();
          start(target, `SIGSTOP for ${ms} ms${target === active ? " (active)" : " (standby)"}`);
          rig.signal(target, "SIGSTOP");
          await sleep(ms);
          rig.signal(target, "SIGCONT");
          end(target);
        }
        return;
      }
      case "kill-redis":
      case "kill-broker": {
        const target = kind === "kill-redis" ? "redis" : "broker";
        const downMs = rng.int(500, 3000);
        start(target, `kill -9, restart after ${downMs} ms`);
        rig.kill(target);
        await sleep(downMs);
        const failed = await rig.restart(target).then(
          () => undefined,
          (err: Error) => `restart failed: ${err.message.slice(0, 200)}`,
        );
        end(target, failed);
        return;
      }
      case "pause-redis":
      case "pause-broker": {
        const target = kind === "pause-redis" ? "redis" : "broker";
        const ms = rng.int(1000, 5000);
        start(target, `SIGSTOP for ${ms} ms`);
        rig.signal(target, "SIGSTOP");
        await sleep(ms);
        rig.signal(target, "SIGCONT");
        end(target);
        return;
      }
      case "redis-oom": {
        const ms = rng.int(2000, 6000);
        start("redis", `maxmemory 1 + noeviction for ${ms} ms (writes refused with OOM)`);
        await rig.redisCli("config", "set", "maxmemory-policy", "noeviction").catch(() => "");
        await rig.redisCli("config", "set", "maxmemory", "1").catch(() => "");
        await sleep(ms);
        await this.retry(() => rig.redisCli("config", "set", "maxmemory", "0"));
        end("redis");
        return;
      }
      case "redis-pause-writes": {
        const ms = rng.int(1000, 5000);
        start("redis", `CLIENT PAUSE ${ms} WRITE`);
        await rig.redisCli("client", "pause", String(ms), "write").catch(() => "");
        await sleep(ms);
        end("redis");
        return;
      }
      case "broker-small-max-message": {
        const ms = rng.int(2000, 6000);
        const small = 16 * 1024;
        start("broker", `${rig.eventsTopic} max.message.bytes ${small} for ${ms} ms`);
        const ok = await this.retry(() => rig.setEventsMaxMessageBytes(small));
        await sleep(ms);
        if (ok) await this.retry(() => rig.setEventsMaxMessageBytes(this.o.eventsMaxMessageBytes));
        end("broker", ok ? undefined : "could not lower the limit");
        return;
      }
      case "oversized-output": {
        // Output 1.25× the topic's limit: refused by the broker however often it is retried.
        const elements = Math.ceil((this.o.eventsMaxMessageBytes * 1.25) / 4);
        start("broker", `a job whose task 0 output is ${(elements * 4) >> 10} KiB (topic max.message.bytes ${this.o.eventsMaxMessageBytes >> 10} KiB)`);
        const detail = await this.o.workload.submitOversized(elements);
        end("broker", detail);
        return;
      }
      case "client-disconnect": {
        // Wait a little for a watch to be open, so the fault usually has something to cut.
        for (let i = 0; i < 20 && !this.o.workload.watching(); i++) await sleep(250);
        const detail = this.o.workload.disconnectOne(rng);
        start("client", detail);
        end("client");
        return;
      }
    }
  }

  private async retry(fn: () => Promise<unknown>): Promise<boolean> {
    for (let i = 0; i < 20; i++) {
      try {
        await fn();
        return true;
      } catch {
        await sleep(500);
      }
    }
    return false;
  }
}
