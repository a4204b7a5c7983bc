// End to end and under faults, on the real broker and the real Redis: a scheduler and three
// agents as separate processes with --queue kafka --state redis. Each case asserts that every
// acknowledged job completes, every result is correct, and no task's result is recorded twice.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { DistributeXClient } from "../../../client/index.js";
import { LocalCluster, waitForListening, type ClusterProcess } from "../../../cli/local-cluster.js";
import { exampleKernels } from "../../../kernels/reference/index.js";
import { freePort, repo, sleep, testServices, uniquePrefix, until } from "../../helpers/services.js";

const saxpy = exampleKernels.saxpy!;
let services: { kafka: string; redis: string };
let redis: Redis;
let wasm: Buffer;

beforeAll(async () => {
  services = testServices();
  redis = new Redis(services.redis);
  wasm = await readFile(path.join(repo, "build/kernels/saxpy.wasm"));
});
afterAll(async () => {
  await redis.quit();
});

interface Rig {
  cluster: LocalCluster;
  prefix: string;
  ports: number[];
  schedulers: Map<number, ClusterProcess>;
  startScheduler(port: number, extra?: string[]): Promise<ClusterProcess>;
  client(): Promise<DistributeXClient>;
}

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.cluster.stop(3000);
  rig = undefined;
});

async function makeRig(opts: { schedulers?: number; agents?: number; redisUrl?: string; kafka?: string; tag: string }): Promise<Rig> {
  const prefix = uniquePrefix(opts.tag);
  const ports = await Promise.all(Array.from({ length: opts.schedulers ?? 1 }, () => freePort()));
  const cluster = new LocalCluster({ agents: 0, logs: path.join(repo, "test-output", `kafka-${prefix}`) });
  const schedulers = new Map<number, ClusterProcess>();
  const schedArgs = [
    "--bus", "kafka", "--state", "redis",
    "--kafka-brokers", opts.kafka ?? services.kafka, "--kafka-topic-prefix", prefix,
    "--redis-url", opts.redisUrl ?? services.redis, "--redis-prefix", prefix,
    "--lease-ttl-ms", "2000", "--agent-timeout-ms", "3000", "--drain-grace-ms", "0",
  ];
  const r: Rig = {
    cluster,
    prefix,
    ports,
    schedulers,
    async startScheduler(port, extra = []) {
      const p = cluster.spawnProcess(`scheduler-${port}`, ["scheduler", "--port", String(port), ...schedArgs, ...extra]);
      schedulers.set(port, p);
      return p;
    },
    async client() {
      // Whichever scheduler answers is the active one (a standby does not listen).
      return until("an active scheduler", async () => {
        for (const port of ports) {
          const c = new DistributeXClient(`127.0.0.1:${port}`);
          try {
            await c.waitForReady(500);
            await c.listNodes();
            return c;
          } catch {
            c.close();
          }
        }
        return undefined;
      }, 60_000, 100);
    },
  };
  const first = await r.startScheduler(ports[0]!);
  await waitForListening(first, 30_000);
  for (let i = 1; i < ports.length; i++) await r.startScheduler(ports[i]!);
  cluster.address = ports.map((p) => `127.0.0.1:${p}`).join(",");
  for (let i = 0; i < (opts.agents ?? 3); i++) cluster.startAgent(i, ["--workers", "1", "--no-calibrate", "--connect-timeout-ms", "0"]);
  const c = await r.client();
  await until("3 agents ready", async () => (await c.listNodes()).filter((n) => n.state === "NODE_STATE_READY").length >= (opts.agents ?? 3), 60_000);
  c.close();
  return r;
}

function makeInputs(tasks: number): Uint8Array[] {
  return saxpy.makeTasks({ tasks, size: tasks * 16, seed: 3 });
}

async function waitDone(r: Rig, jobId: string, timeoutMs = 120_000): Promise<string> {
  return until(`job ${jobId} to finish`, async () => {
    const c = await r.client();
    try {
      const job = await c.getJob(jobId);
      return ["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"].includes(job.state) ? job.state : undefined;
    } finally {
      c.close();
    }
  }, timeoutMs, 300);
}

async function assertAllCorrect(r: Rig, jobId: string, inputs: Uint8Array[]): Promise<void> {
  const c = await r.client();
  try {
    const results = await c.getResults(jobId);
    expect(results.length).toBe(inputs.length);
    const seen = new Set<number>();
    for (const res of results) {
      expect(seen.has(res.taskIndex), `task ${res.taskIndex} appears twice`).toBe(false);
      seen.add(res.taskIndex);
      expect(res.state).toBe("TASK_STATE_SUCCEEDED");
      const check = saxpy.check(inputs[res.taskIndex]!, res.output);
      expect(check.ok, `task ${res.taskIndex}: ${check.detail}`).toBe(true);
    }
    // Exactly one stored record per task in Redis.
    expect(await redis.hlen(`${r.prefix}:job:${jobId}:results`)).toBe(inputs.length);
  } finally {
    c.close();
  }
}

async function submit(r: Rig, inputs: Uint8Array[]): Promise<string> {
  const c = await r.client();
  try {
    const { kernelId } = await c.registerKernel(wasm, { name: "saxpy" });
    return (await c.submitJob({ kernelId, inputs, skipResultCache: true })).jobId;
  } finally {
    c.close();
  }
}

async function waitProgress(r: Rig, jobId: string, atLeast: number): Promise<void> {
  await until(`job ${jobId} to reach ${atLeast} done`, async () => {
    const c = await r.client();
    try {
      return (await c.getJob(jobId)).counts!.succeeded >= atLeast;
    } finally {
      c.close();
    }
  }, 60_000, 50);
}

describe("kafka + redis cluster", () => {
  it("runs a 1,000-task job on a scheduler and three agent processes; every result correct", async () => {
    rig = await makeRig({ tag: "e2e" });
    const inputs = makeInputs(1000);
    const jobId = await submit(rig, inputs);
    expect(await waitDone(rig, jobId)).toBe("JOB_STATE_SUCCEEDED");
    await assertAllCorrect(rig, jobId, inputs);
  });

  it("kill -9 of an agent mid-job: the job completes, nothing recorded twice", async () => {
    rig = await makeRig({ tag: "agentkill" });
    const inputs = makeInputs(600);
    const jobId = await submit(rig, inputs);
    await waitProgress(rig, jobId, 50);
    rig.cluster.processes.find((p) => p.name === "agent-0")!.child.kill("SIGKILL");
    expect(await waitDone(rig, jobId)).toBe("JOB_STATE_SUCCEEDED");
    await assertAllCorrect(rig, jobId, inputs);
  });

  it("kill -9 of the scheduler mid-job, then a restart: the job resumes from Redis and Kafka", async () => {
    rig = await makeRig({ tag: "schedkill" });
    const inputs = makeInputs(600);
    const jobId = await submit(rig, inputs);
    await waitProgress(rig, jobId, 50);
    const port = rig.ports[0]!;
    rig.schedulers.get(port)!.child.kill("SIGKILL");
    await rig.schedulers.get(port)!.exited;
    await sleep(2500); // let the old lease expire
    await rig.startScheduler(port);
    expect(await waitDone(rig, jobId)).toBe("JOB_STATE_SUCCEEDED");
    await assertAllCorrect(rig, jobId, inputs);
  });

  it("two schedulers: kill -9 the active one and the standby takes over", async () => {
    rig = await makeRig({ tag: "standby", schedulers: 2 });
    const inputs = makeInputs(600);
    const jobId = await submit(rig, inputs);
    await waitProgress(rig, jobId, 50);
    rig.schedulers.get(rig.ports[0]!)!.child.kill("SIGKILL");
    expect(await waitDone(rig, jobId)).toBe("JOB_STATE_SUCCEEDED");
    await assertAllCorrect(rig, jobId, inputs);
  });

  it("a Redis restart mid-job: the job completes, nothing recorded twice", async () => {
    const port = await freePort();
    const dir = mkdtempSync(path.join(os.tmpdir(), "distx-redis-"));
    const startRedis = () =>
      execFileSync("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--daemonize", "yes", "--dir", dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--pidfile", path.join(dir, "pid")]);
    startRedis();
    const url = `redis://127.0.0.1:${port}`;
    try {
      await until("private redis", async () => spawnSync("redis-cli", ["-p", String(port), "ping"]).stdout?.toString().includes("PONG"));
      rig = await makeRig({ tag: "redisrestart", redisUrl: url });
      const inputs = makeInputs(600);
      const jobId = await submit(rig, inputs);
      await waitProgress(rig, jobId, 50);
      spawnSync("redis-cli", ["-p", String(port), "shutdown"]);
      await sleep(1500);
      startRedis();
      expect(await waitDone(rig, jobId)).toBe("JOB_STATE_SUCCEEDED");
      const r2 = new Redis(url);
      try {
        expect(await r2.hlen(`${rig.prefix}:job:${jobId}:results`)).toBe(inputs.length);
      } finally {
        await r2.quit();
      }
      const c = await rig.client();
      const results = await c.getResults(jobId);
      c.close();
      expect(new Set(results.map((x) => x.taskIndex)).size).toBe(inputs.length);
      for (const res of results) expect(saxpy.check(inputs[res.taskIndex]!, res.output).ok).toBe(true);
    } finally {
      await rig?.cluster.stop(3000);
      rig = undefined;
      spawnSync("redis-cli", ["-p", String(port), "shutdown", "nosave"]);
    }
  });

  it("cancel right after dispatch: each agent cancels every task it was given (cancels travel on Kafka too)", async () => {
    rig = await makeRig({ tag: "cancel" });
    const c = await rig.client();
    try {
      const { kernelId } = await c.registerKernel(await readFile(path.join(repo, "build/kernels/montecarlo_pi.wasm")), { name: "montecarlo_pi" });
      // Six tasks of ~4·10⁹ samples (seconds each): the three agents take them all at once (one
      // worker and two prefetched each), and none can finish before the cancel.
      const inputs = exampleKernels.montecarlo_pi!.makeTasks({ tasks: 6, size: 6 * 4_000_000_000 });
      const { jobId } = await c.submitJob({ kernelId, inputs, timeoutMs: 120_000, skipResultCache: true });
      // Cancel the moment the scheduler says every task is placed. The cancel goes to each agent on
      // its assignments partition, behind the assignments (the bus contract test checks the order).
      const assigned = new Set<number>();
      for await (const ev of c.watchJob(jobId)) {
        if (ev.task?.state === "TASK_STATE_ASSIGNED") assigned.add(ev.task.taskIndex);
        // The first event is a snapshot: tasks placed before the watch began are counted there.
        if (assigned.size === 6 || (ev.job && ev.job.counts!.pending === 0)) break;
      }
      expect((await c.cancelJob(jobId)).state).toBe("JOB_STATE_CANCELLED");
      // Each agent cancelled what it had been given: none was left to run for seconds and succeed.
      const agents = ["agent-0", "agent-1", "agent-2"];
      const outcomes = async (outcome: string) => {
        let n = 0;
        for (const name of agents) {
          const text = await (await fetch(`http://${await rig!.cluster.adminAddress(name)}/metrics`)).text();
          for (const line of text.split("\n")) {
            if (line.startsWith("distx_agent_tasks_completed_total{") && line.includes(`outcome="${outcome}"`)) n += Number(line.split(" ").pop());
          }
        }
        return n;
      };
      await until("all six cancelled on the agents", async () => (await outcomes("cancelled")) === 6, 30_000, 200);
      expect(await outcomes("succeeded")).toBe(0);
    } finally {
      c.close();
    }
  }, 120_000);

  it("a Kafka broker restart mid-job: the job completes, nothing recorded twice", async () => {
    const kport = await freePort();
    const env = { ...process.env, KAFKA_PORT: String(kport), KAFKA_CONTROLLER_PORT: String(await freePort()) };
    const kafka = (cmd: string) => execFileSync("bash", [path.join(repo, "scripts/kafka.sh"), cmd], { env, stdio: ["ignore", "ignore", "inherit"] });
    kafka("up");
    // Not a finally: on a timeout vitest moves on without waiting for the body, and a private
    // broker left running outlives the test process (seen once at load 19).
    onTestFinished(async () => {
      await rig?.cluster.stop(3000);
      rig = undefined;
      kafka("wipe");
    });
    rig = await makeRig({ tag: "brokerrestart", kafka: `127.0.0.1:${kport}` });
    const inputs = makeInputs(600);
    const jobId = await submit(rig, inputs);
    await waitProgress(rig, jobId, 50);
    kafka("restart");
    expect(await waitDone(rig, jobId, 180_000)).toBe("JOB_STATE_SUCCEEDED");
    await assertAllCorrect(rig, jobId, inputs);
  }, 240_000);
});
