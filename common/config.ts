// Configuration: defaults < optional JSON file < environment (DISTX_*) < command-line flags.
// Every source is validated by one zod schema per role, and an error names the field,
// the bad value and where it came from, e.g. `workers: must be ≥ 1 (got 0 from env DISTX_WORKERS)`.
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { DEFAULT_KERNEL_LOG_BYTES, DEFAULT_KERNEL_LOG_LINES, MAX_KERNEL_LOG_BYTES, MAX_KERNEL_LOG_LINES } from "./kernel-log.js";

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    message: string,
    readonly issues: { field: string; message: string; source: string }[] = [],
  ) {
    super(message);
  }
}

const boolFromString = z.preprocess((v) => {
  if (typeof v !== "string") return v;
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  return v;
}, z.boolean());

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number({ error: "must be a number" }).int("must be a whole number").min(min, `must be ≥ ${min}`).max(max, `must be ≤ ${max}`);

/** A share of something, 0 < x ≤ 1 (e.g. a load). */
const fraction = z.coerce.number({ error: "must be a number" }).gt(0, "must be > 0").max(1, "must be ≤ 1 (a share of the cores, e.g. 0.5)");

const logLevel = z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]);

/** "host:port", with a numeric port. */
export const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, "must be host:port, e.g. 127.0.0.1:7070");

const labels = z.preprocess((v) => {
  // From env or flags: "zone=a,tier=gpu".
  if (typeof v !== "string") return v;
  const out: Record<string, string> = {};
  for (const pair of v.split(",").filter(Boolean)) {
    const [k, ...rest] = pair.split("=");
    out[(k ?? "").trim()] = rest.join("=").trim();
  }
  return out;
}, z.record(z.string().regex(/^[A-Za-z0-9_.\/-]+$/, "label keys are letters, digits, _ . / -"), z.string()));

/**
 * How a Kafka client authenticates (SASL) and whether it speaks TLS; both roles have them, each
 * with its own principal (see docs/security-backends.md for the ACLs each role needs).
 */
const kafkaSecurityFields = {
  kafkaSaslMechanism: z.enum(["none", "plain", "scram-sha-256", "scram-sha-512"]).default("none"),
  kafkaUsername: z.string().min(1).max(256).optional(),
  /** Prefer kafkaPasswordFile: a password in a flag shows in `ps`. Never logged. */
  kafkaPassword: z.string().min(1).max(1024).optional(),
  /** A file holding the password (one line): what a secret mount gives. */
  kafkaPasswordFile: z.string().min(1).optional(),
  /** TLS to the brokers (SASL_SSL or SSL listeners); implied by kafkaCaFile. */
  kafkaTls: boolFromString.default(false),
  /** PEM CA bundle that must have signed the brokers' certificates (default: the system's roots). */
  kafkaCaFile: z.string().min(1).optional(),
};

/** Settings whose values are secrets: a config error names them but never shows the value. */
const SECRET_FIELDS = new Set(["kafkaPassword", "redisUrl"]);

/** The cluster data dir: $DISTX_HOME, else ~/.distx (PKI, tokens, client profile; docs/security.md). */
export const defaultDataDir = (env: NodeJS.ProcessEnv = process.env): string => path.resolve(env.DISTX_HOME || path.join(os.homedir(), ".distx"));

const securitySettings = {
  dataDir: z.string().min(1).default(() => defaultDataDir()),
  /** Turns TLS and authentication off. Explicit only; the scheduler then warns every minute. */
  insecure: boolFromString.default(false),
};
/** Per-tenant limits (docs/security.md, "Quotas"); a tenant's own entry in tenantQuotas overrides any of them. */
const quotaFields = {
  /** Kernels a tenant may hold registered. */
  kernels: int(0, 1_000_000),
  /** Bytes of kernels a tenant may hold registered (a kernel shared by two tenants counts for both). */
  kernelBytes: int(0, 2 ** 40),
  /** Tasks of a tenant's unfinished jobs (queued, assigned or running). */
  queuedTasks: int(0, 1_000_000_000),
  /** Input bytes the scheduler holds for a tenant's unfinished jobs; output bytes it keeps by reference for its jobs (until retired). */
  jobBytes: int(0, 2 ** 44),
  outputBytes: int(0, 2 ** 44),
};
export const tenantQuotaSchema = z.object(quotaFields).partial().strict();

export const schedulerConfigSchema = z
  .object({
    host: z.string().min(1).default("127.0.0.1"),
    port: int(0, 65535).default(7070),
    heartbeatIntervalMs: int(50, 60_000).default(1000),
    /** An agent that has not been heard from for this long is declared down and its tasks re-placed. */
    agentTimeoutMs: int(100, 600_000).default(5000),
    defaultTaskTimeoutMs: int(1, 86_400_000).default(60_000),
    maxTaskTimeoutMs: int(1, 86_400_000).default(3_600_000),
    maxTasksPerJob: int(1, 10_000_000).default(100_000),
    maxJobBytes: int(1, 2 ** 31).default(200 * 1024 * 1024),
    /** Inputs this big are stored once in the state store (by sha256); assignments carry refs, agents FetchBlob them. 0 = never. */
    inputByRefBytes: int(0, 2 ** 31).default(64 * 1024),
    /** Outputs this big go by reference (agents UploadOutput; results carry refs; GetResultOutput reads them). 0 = never. */
    outputByRefBytes: int(0, 2 ** 31).default(256 * 1024),
    /** A GetResultOutput or FetchBlob stream whose reader takes no chunk for this long is reset (RST_STREAM CANCEL), so a reader that never reads holds nothing for ever; so is a call whose large request message stops arriving (inbound-budget.ts). */
    outputStallMs: int(100, 3_600_000).default(60_000),
    /** Bytes of request messages that may be arriving at once, over all calls; a large message beyond it is refused unread (retryable). */
    maxInboundBytes: int(64 * 1024 * 1024, 2 ** 40).default(1024 * 1024 * 1024),
    /** With the in-memory state store: the most bytes of stored blobs (inputs by reference, shared inputs, outputs by reference). */
    blobStoreBytes: int(1, 2 ** 44).default(2 * 1024 * 1024 * 1024),
    defaultMaxAttempts: int(1, 100).default(5),
    /** Tasks an agent may hold beyond its worker count, so workers never wait on the network. */
    prefetchPerWorker: int(0, 64).default(2),
    /**
     * Tiny tasks: a node may also hold as many tasks as it completes in this long (its measured
     * completion rate × window), so the dispatch round trip (Kafka: two hops) never starves its
     * workers. Long tasks complete slowly, so for them this stays below workers × (1 + prefetch).
     * 0 turns it off.
     */
    pipelineWindowMs: int(0, 10_000).default(100),
    /** How long SIGTERM waits for running jobs before the scheduler stops anyway. */
    drainGraceMs: int(0, 3_600_000).default(10_000),
    /** Finished jobs kept for `jobs` and `result` (the in-memory store). */
    retainFinishedJobs: int(1, 1_000_000).default(1000),
    /** Placement: forecast (finish time, forecast host load), finish-time (the same, last load sample), capacity (free capacity × speed). */
    placement: z.enum(["forecast", "finish-time", "capacity"]).default("forecast"),
    /** Predicted-saturation events fire when forecast utilisation reaches this (0..1) within the horizon. */
    saturationThreshold: z.coerce.number({ error: "must be a number" }).gt(0, "must be > 0").max(1, "must be ≤ 1").default(0.9),
    saturationHorizonMs: int(100, 3_600_000).default(15_000),
    /** "trend" (default): a significant short-window slope extrapolated to the threshold (scheduler/forecast/trend-detector.ts,
     *  issue #14: far fewer false alarms on heartbeats than the forecast bounds, bench/results/alerts.md);
     *  "upper": forecast + p95 headroom of recent errors (the default before); "mean": the point forecast. */
    saturationBound: z.enum(["upper", "mean", "trend"]).default("trend"),
    /** At most one predicted-saturation event per node (and for the cluster) per this long. */
    saturationCooldownMs: int(0, 86_400_000).default(60_000),
    /** Move queued, not-started tasks off nodes that fall behind their forecast. */
    rebalance: boolFromString.default(true),
    /** The task bus between scheduler and agents (and the submissions log): in memory, or Kafka. Was `queue`. */
    bus: z.enum(["memory", "kafka"]).default("memory"),
    state: z.enum(["memory", "redis"]).default("memory"),
    /** Kafka bootstrap brokers, "host:port[,host:port…]" (used with bus=kafka). */
    kafkaBrokers: z.string().regex(/^[^,\s]+:\d{1,5}(,[^,\s]+:\d{1,5})*$/, "must be host:port[,host:port…]").default("127.0.0.1:9092"),
    /** Prefix of every topic name (submissions, assignments, events, load). */
    kafkaTopicPrefix: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, "letters, digits, . _ -").default("distx"),
    /** Partitions of the assignments topic: agents share them, hash(node id) picks one. */
    kafkaAssignmentPartitions: int(1, 10_000).default(16),
    /** Partitions of the submissions, events and load topics. */
    kafkaPartitions: int(1, 10_000).default(8),
    /** Replicas of each topic the scheduler creates; 0 = min(3, brokers). min.insync.replicas is a majority of it. */
    kafkaReplicationFactor: int(0, 32).default(0),
    /** Brokers as the agents should reach them, when that differs from kafkaBrokers. */
    kafkaAgentBrokers: z.string().optional(),
    ...kafkaSecurityFields,
    /** redis://host:port[/db], or rediss://user:password@host:port[/db] for TLS and an ACL user. */
    redisUrl: z.string().regex(/^rediss?:\/\//, "must be redis://host:port[/db]").default("redis://127.0.0.1:6379"),
    /** PEM CA bundle that must have signed Redis's certificate (rediss://); default: the system's roots. */
    redisCaFile: z.string().min(1).optional(),
    redisPrefix: z.string().regex(/^[A-Za-z0-9:._-]{1,100}$/, "letters, digits, : . _ -").default("distx"),
    /** Leader lease: a standby takes over this long after the active scheduler stops renewing. */
    leaseTtlMs: int(500, 600_000).default(3000),
    /** How long finished jobs' results and metadata stay in Redis. */
    resultTtlS: int(1, 365 * 86400).default(7 * 86400),
    /** Identical tasks (same kernel, input, seed) are answered from this cache; 0 turns it off. */
    resultCacheTtlS: int(0, 365 * 86400).default(86400),
    /** One attempt to reach Kafka or Redis at start gives up after this long. */
    backendConnectTimeoutMs: int(100, 120_000).default(5000),
    /**
     * How long a starting scheduler keeps retrying a Kafka or Redis that is down or refusing
     * writes (0 = for ever, as a supervised standby should). Refusals that a retry cannot fix
     * (bad credentials, ACLs, TLS) fail at once.
     */
    backendStartWaitMs: int(0, 86_400_000).default(0),
    logLevel: logLevel.default("info"),
    /** Admin HTTP port (/metrics, /healthz, /readyz, /dashboard); 0 picks a free one; unset = no admin server. */
    adminPort: int(0, 65535).optional(),
    adminHost: z.string().min(1).default("127.0.0.1"),
    /** Alerts are POSTed here when set, as Alertmanager's webhook message (version "4"). */
    alertWebhookUrl: z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }).optional(),
    /** An Alertmanager (base URL): alerts are POSTed to its /api/v2/alerts, active ones re-posted every minute. */
    alertmanagerUrl: z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }).optional(),
    ...securitySettings,
    /**
     * Local clusters (LocalCluster): keep a reusable, time-limited join token for this machine's
     * agents in this file (0600), so they join without an admin step.
     */
    bootstrapJoinTokenFile: z.string().min(1).optional(),
    /** Extra names/addresses for the scheduler certificate when the PKI is created, "a,b". */
    certHosts: z.string().regex(/^[A-Za-z0-9.:\[\],-]*$/, "host names and addresses separated by commas").default(""),
    quotaKernels: quotaFields.kernels.default(100),
    quotaKernelBytes: quotaFields.kernelBytes.default(128 * 1024 * 1024),
    quotaQueuedTasks: quotaFields.queuedTasks.default(1_000_000),
    quotaJobBytes: quotaFields.jobBytes.default(1024 * 1024 * 1024),
    quotaOutputBytes: quotaFields.outputBytes.default(4 * 1024 * 1024 * 1024),
    /** Overrides of the quota* defaults for named tenants (config file), e.g. {"t1": {"kernels": 10}}. */
    tenantQuotas: z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, "tenant names are a-z 0-9 _ -"), tenantQuotaSchema).default({}),
    /** A kernel registration no job has used for this long is removed (its bytes too once no tenant holds it); 0 = never. */
    kernelTtlS: int(0, 10 * 365 * 86400).default(30 * 86400),
  })
  .strict();
export type SchedulerConfig = z.infer<typeof schedulerConfigSchema>;

export const agentConfigSchema = z
  .object({
    /** One scheduler, or several (active + standbys) separated by commas: the agent tries each in turn. */
    scheduler: z
      .string()
      .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}(,(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5})*$/, "must be host:port[,host:port…], e.g. 127.0.0.1:7070")
      .default("127.0.0.1:7070"),
    /** Overrides the Kafka brokers the scheduler hands out (when this host reaches them by another name). */
    kafkaBrokers: z.string().optional(),
    ...kafkaSecurityFields,
    /** Kernel worker threads; 0 means one per logical core. */
    workers: int(0, 1024).default(0),
    /** Cores left to the host's own work: the agent runs at most (cores − reserveCores) workers, never fewer than one. */
    reserveCores: int(0, 1024).default(0),
    /**
     * Share the machine: above this host load (0..1 of the agent's cores busy with anything but
     * this agent's own kernels) the agent backs off: the scheduler places nothing new on it.
     * Unset: never (a dedicated machine).
     */
    maxHostLoad: fraction.optional(),
    /** Above this host load a backing-off agent gives its unstarted tasks back at once; default: only after hostLoadGraceMs. */
    giveBackHostLoad: fraction.optional(),
    /** How long an agent backs off before it gives its unstarted tasks back (0 = at once). */
    hostLoadGraceMs: int(0, 3_600_000).default(10_000),
    /** Default per-task memory cap for a kernel instance, in MiB. */
    memoryLimitMb: int(1, 65_536).default(256),
    /** The largest cap a job may ask for, in MiB. */
    maxMemoryLimitMb: int(1, 65_536).default(2048),
    /** Blobs fetched from the scheduler (inputs by reference, shared inputs) kept by sha256, least recently used dropped first, in MiB. */
    blobCacheMb: int(1, 1_048_576).default(1024),
    /** What a kernel may log per task (env.log), in bytes and lines; past either, lines are dropped and counted (common/kernel-log.ts). 0 bytes: none kept. */
    kernelLogBytes: int(0, MAX_KERNEL_LOG_BYTES).default(DEFAULT_KERNEL_LOG_BYTES),
    kernelLogLines: int(1, MAX_KERNEL_LOG_LINES).default(DEFAULT_KERNEL_LOG_LINES),
    /** Each kernel worker keeps the linear memories of its last tasks, zeroed, up to this many MiB (agent/wasm/memory-pool.ts): a reused memory saves the page faults of a fresh one. 0 keeps none. */
    memoryPoolMb: int(0, 1_048_576).default(256),
    /** MiB of output buffers (≥ 64 KiB each) kept for later outputs, each once the scheduler has its result (agent/wasm/output-pool.ts); 0 = none. */
    outputPoolMb: int(0, 1_048_576).default(64),
    labels: labels.default({}),
    name: z.string().max(200).optional(),
    calibrate: boolFromString.default(true),
    /** Testing aid: run kernels this fraction as fast (each task's run is stretched by 1/speedFactor), calibration included. */
    speedFactor: z.coerce.number({ error: "must be a number" }).gt(0, "must be > 0").max(1, "must be ≤ 1").default(1),
    drainGraceMs: int(0, 3_600_000).default(30_000),
    /**
     * How long to keep retrying the scheduler before giving up at start (0 = for ever, the
     * default: a supervised agent started while its cluster is down or failing over must wait
     * for it, as it does for a scheduler lost later; set it to fail fast in scripts).
     */
    connectTimeoutMs: int(0, 86_400_000).default(0),
    /**
     * With the Kafka bus: how long the agent's assignment consumer may go without a word from the
     * broker (no fetch, no group heartbeat answered) before the agent gives up its session, so that
     * the scheduler marks it DOWN and places what it held elsewhere; it registers again once the
     * broker answers. Its gRPC heartbeats alone would keep it READY with tasks it cannot read.
     * Longer than a broker restart, so a broker that every agent lost does not send them all
     * away (0 = never).
     */
    kafkaStallMs: int(0, 86_400_000).default(60_000),
    /** auto: use a GPU through headless-gl when a GL context really opens; off: gpu.js cpu mode only. */
    gpu: z.enum(["auto", "off"]).default("auto"),
    /** V8 heap cap of each GPU executor process, MiB. */
    gpuMemoryLimitMb: int(64, 65_536).default(2048),
    logLevel: logLevel.default("info"),
    /** Admin HTTP port (/metrics, /healthz, /readyz); 0 picks a free one; unset = no admin server. */
    adminPort: int(0, 65535).optional(),
    adminHost: z.string().min(1).default("127.0.0.1"),
    ...securitySettings,
    /** Join token (dxj_…) for the first connection; not needed once the agent holds its certificate. */
    joinToken: z.string().max(200).optional(),
    /** A file holding the join token (so that it stays out of the process list). */
    joinTokenFile: z.string().min(1).optional(),
    /** The CA pin printed by `distx join-token create`: sha256:<hex>. */
    caHash: z.string().regex(/^sha256:[0-9a-f]{64}$/, "must be sha256:<64 hex digits>").optional(),
    /** The cluster CA certificate file, instead of (or as well as) the pin. */
    ca: z.string().min(1).optional(),
  })
  .strict();
export type AgentConfig = z.infer<typeof agentConfigSchema>;

type Source = "default" | "file" | "env" | "flag";

export interface LoadConfigOptions {
  /** Path of a JSON file; its `section` key (or the whole file) holds the settings. */
  file?: string | undefined;
  section: "scheduler" | "agent";
  env?: NodeJS.ProcessEnv;
  /** Values given on the command line (undefined entries are ignored). */
  flags?: Record<string, unknown>;
  /** Told about each renamed setting still used; default: a Node DeprecationWarning on stderr. */
  onDeprecated?: (message: string) => void;
}

/** Settings renamed, old name → new name: the old name still works, with a deprecation message. */
const RENAMED_SETTINGS: Readonly<Record<LoadConfigOptions["section"], Readonly<Record<string, string>>>> = {
  scheduler: { queue: "bus" }, // "queue" selected the bus; the ready queue is in memory whatever it said
  agent: {},
};

const envName = (key: string) => "DISTX_" + key.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();

export function loadConfig<S extends z.ZodObject>(schema: S, options: LoadConfigOptions): z.infer<S> {
  const merged: Record<string, unknown> = {};
  const sources = new Map<string, string>();
  const renamed = RENAMED_SETTINGS[options.section];
  const deprecated = options.onDeprecated ?? ((message: string) => process.emitWarning(message, { type: "DeprecationWarning", code: "DISTX_SETTING_RENAMED" }));
  const set = (given: string, value: unknown, source: Source, where: string) => {
    if (value === undefined) return;
    const key = renamed[given] ?? given;
    if (key !== given) deprecated(`setting "${given}" (${source} ${where}) is now "${key}"; the old name will be removed in a later release`);
    merged[key] = value;
    sources.set(key, `${source} ${where}`.trim());
  };

  if (options.file) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(options.file, "utf8"));
    } catch (err) {
      throw new ConfigError(`cannot read config file ${options.file}: ${(err as Error).message}`);
    }
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      throw new ConfigError(`config file ${options.file} must hold a JSON object`);
    }
    const rec = raw as Record<string, unknown>;
    const section = rec[options.section] ?? (rec.scheduler || rec.agent ? {} : rec);
    if (typeof section !== "object" || section === null) {
      throw new ConfigError(`config file ${options.file}: "${options.section}" must be an object`);
    }
    for (const [k, v] of Object.entries(section)) set(k, v, "file", options.file);
  }
  const env = options.env ?? process.env;
  for (const key of [...Object.keys(renamed), ...Object.keys(schema.shape)]) {
    const name = envName(key);
    if (env[name] !== undefined && env[name] !== "") set(key, env[name], "env", name);
  }
  for (const [k, v] of Object.entries(options.flags ?? {})) set(k, v, "flag", "--" + k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase()));

  const parsed = schema.safeParse(merged);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => {
    const field = issue.path.join(".") || "(config)";
    const top = String(issue.path[0] ?? "");
    const source = sources.get(top) ?? "default";
    let message = issue.message;
    if (issue.code === "unrecognized_keys") message = `unknown setting(s): ${issue.keys.join(", ")}`;
    return { field, message, source };
  });
  const lines = issues.map((i) => {
    const top = i.field.split(".")[0] ?? "";
    const shown = SECRET_FIELDS.has(top) ? "(hidden)" : JSON.stringify(merged[top]);
    const value = top in merged ? ` (got ${shown} from ${i.source})` : "";
    return `  ${i.field}: ${i.message}${value}`;
  });
  throw new ConfigError(`invalid ${options.section} configuration:\n${lines.join("\n")}`, issues);
}
