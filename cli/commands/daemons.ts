// `distx scheduler` and `distx agent`: the two long-running processes.
import type { Command } from "commander";
import { Agent } from "../../agent/agent.js";
import { agentConfigSchema, loadConfig, schedulerConfigSchema } from "../../common/config.js";
import { createLogger } from "../../common/logger.js";
import { Scheduler } from "../../scheduler/scheduler.js";
import { openBackendsPatiently } from "../../scheduler/backends/factory.js";
import { fail, onShutdownSignal } from "../util.js";
import { registerServiceCommands } from "./service.js";

export function registerDaemonCommands(program: Command): void {
  program
    .command("scheduler")
    .description("run the scheduler (gRPC API for clients and agents)")
    .option("-c, --config <file>", "JSON config file (its \"scheduler\" section)")
    .option("--host <host>", "address to listen on (env DISTX_HOST)")
    .option("-p, --port <port>", "port to listen on; 0 picks a free one (env DISTX_PORT)")
    .option("--heartbeat-interval-ms <ms>", "agent heartbeat interval")
    .option("--agent-timeout-ms <ms>", "declare an agent down after this long without a heartbeat")
    .option("--default-task-timeout-ms <ms>", "per-task timeout when a job sets none")
    .option("--max-tasks-per-job <n>", "largest job accepted")
    .option("--drain-grace-ms <ms>", "how long SIGTERM waits for running jobs")
    .option("--bus <backend>", "task bus between scheduler and agents: memory|kafka (env DISTX_BUS)")
    .option("--queue <backend>", "deprecated name of --bus (env DISTX_QUEUE)")
    .option("--state <backend>", "state store backend: memory|redis (env DISTX_STATE)")
    .option("--kafka-brokers <host:port,...>", "Kafka bootstrap brokers (env DISTX_KAFKA_BROKERS)")
    .option("--kafka-topic-prefix <prefix>", "prefix of the Kafka topic names (env DISTX_KAFKA_TOPIC_PREFIX)")
    .option("--kafka-sasl-mechanism <m>", "none|plain|scram-sha-256|scram-sha-512 (env DISTX_KAFKA_SASL_MECHANISM)")
    .option("--kafka-username <user>", "Kafka SASL user of this process's role (env DISTX_KAFKA_USERNAME)")
    .option("--kafka-password-file <file>", "file holding the Kafka SASL password; or env DISTX_KAFKA_PASSWORD (no flag: it would show in ps)")
    .option("--kafka-tls <on|off>", "TLS to the Kafka brokers (env DISTX_KAFKA_TLS)")
    .option("--kafka-ca-file <pem>", "CA that signed the brokers' certificates; implies --kafka-tls (env DISTX_KAFKA_CA_FILE)")
    .option("--kafka-replication-factor <n>", "replicas of each topic created; 0 = min(3, brokers) (env DISTX_KAFKA_REPLICATION_FACTOR)")
    .option("--redis-url <url>", "redis://host:port[/db], rediss://user:password@host:port for TLS + ACL user (env DISTX_REDIS_URL)")
    .option("--redis-ca-file <pem>", "CA that signed Redis's certificate (env DISTX_REDIS_CA_FILE)")
    .option("--redis-prefix <prefix>", "prefix of every Redis key (env DISTX_REDIS_PREFIX)")
    .option("--lease-ttl-ms <ms>", "leader lease; a standby takes over this long after the active one dies")
    .option("--backend-start-wait-ms <ms>", "how long to keep retrying Kafka/Redis that are down at start; 0 = for ever")
    .option("--admin-port <port>", "admin HTTP port for /metrics, /healthz, /readyz, /dashboard; 0 picks a free one (env DISTX_ADMIN_PORT)")
    .option("--admin-host <host>", "address the admin HTTP server listens on (env DISTX_ADMIN_HOST)")
    .option("--alert-webhook-url <url>", "POST alerts to this URL in Alertmanager's webhook format (env DISTX_ALERT_WEBHOOK_URL)")
    .option("--alertmanager-url <url>", "send alerts to this Alertmanager (its /api/v2/alerts), like Prometheus does (env DISTX_ALERTMANAGER_URL)")
    .option("--quota-kernels <n>", "kernels a tenant may hold (per-tenant overrides: tenantQuotas in the config file)")
    .option("--quota-kernel-bytes <bytes>", "bytes of kernels a tenant may hold")
    .option("--quota-queued-tasks <n>", "unfinished tasks a tenant may have")
    .option("--quota-job-bytes <bytes>", "input bytes of a tenant's unfinished jobs")
    .option("--quota-output-bytes <bytes>", "bytes of outputs by reference kept for a tenant's jobs")
    .option("--output-by-ref-bytes <bytes>", "task outputs of at least this size are uploaded by agents and read by reference; 0 = never (env DISTX_OUTPUT_BY_REF_BYTES)")
    .option("--max-inbound-bytes <bytes>", "request bytes that may be arriving at once; a large message beyond it is refused, retryable (env DISTX_MAX_INBOUND_BYTES)")
    .option("--output-stall-ms <ms>", "end a GetResultOutput/FetchBlob stream whose client takes nothing, or a call whose large request stops arriving, for this long (env DISTX_OUTPUT_STALL_MS)")
    .option("--kernel-ttl-s <s>", "remove kernels no job has used for this long; 0 = never")
    .option("--placement <policy>", "placement policy: forecast (estimated finish time, forecast host load), finish-time (the same without the forecast: last load sample) or capacity (env DISTX_PLACEMENT)")
    .option("--saturation-threshold <u>", "utilisation (0..1) that counts as saturated for predicted_saturation events")
    .option("--saturation-horizon-ms <ms>", "how far ahead predicted_saturation looks")
    .option("--saturation-bound <upper|mean|trend>", "what must reach the threshold: trend (default: significant short-window slope), or upper or mean (forecast bounds)")
    .option("--saturation-cooldown-ms <ms>", "at most one predicted_saturation per node per this long")
    .option("--rebalance <on|off>", "move queued tasks off nodes that fall behind their forecast")
    .option("--data-dir <dir>", "cluster data dir: PKI, tokens (env DISTX_DATA_DIR; default $DISTX_HOME or ~/.distx)")
    .option("--cert-hosts <a,b>", "extra names/addresses for the scheduler certificate when the PKI is created")
    .option("--bootstrap-join-token-file <file>", "keep a reusable join token for local agents in this file")
    .option("--insecure", "no TLS and no authentication (logs a warning every minute)")
    .option("--log-level <level>", "trace|debug|info|warn|error")
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      try {
        const { config: file, insecure, ...flags } = opts;
        // --insecure sets it; left unset otherwise so env/file can decide.
        const config = loadConfig(schedulerConfigSchema, { file: file as string | undefined, section: "scheduler", flags: { ...flags, insecure: insecure === true ? true : undefined } });
        const log = createLogger("scheduler", config.logLevel);
        let current: Scheduler | undefined;
        let shuttingDown = false;
        onShutdownSignal(async (signal) => {
          shuttingDown = true;
          log.info({ event: "shutdown", signal }, "draining before exit");
          await current?.stop();
          log.info({ event: "stopped" }, "scheduler stopped");
        });
        // One Scheduler per term as leader: when another scheduler takes the lease (this one could
        // not renew it in time: paused, or Redis refused writes for longer than leaseTtlMs), this
        // one steps down at once, so two never place work, and stands by again in a fresh
        // instance, rather than exiting and leaving its supervisor to restart it.
        while (!shuttingDown) {
          const backends = await openBackendsPatiently(config, log);
          let onLost!: (holder: string | null) => void;
          const lost = new Promise<string | null>((resolve) => (onLost = resolve));
          const scheduler = new Scheduler(config, log, { ...backends, onLeaseLost: (holder) => onLost(holder) });
          current = scheduler;
          const starting = scheduler.start();
          starting.catch(() => undefined); // once the lease is lost, a start still under way is moot
          await Promise.race([starting, lost]);
          const holder = await lost;
          if (shuttingDown) break;
          log.warn({ event: "lease_lost", holder }, "another scheduler took the lease; stepping down to standby");
          await scheduler.stepDown();
        }
      } catch (err) {
        fail(err);
      }
    });

  const agentCommand = program
    .command("agent")
    .description("run an agent that profiles this host and executes kernels (install/uninstall: as a systemd service)")
    // Its options are read before `install`/`uninstall` only, which have their own --scheduler
    // (positional options are on from the root down: cli/main.ts).
    .enablePositionalOptions()
    .option("-c, --config <file>", "JSON config file (its \"agent\" section)")
    .option("-s, --scheduler <host:port>", "scheduler address (env DISTX_SCHEDULER)")
    .option("--kafka-brokers <host:port,...>", "override the Kafka brokers the scheduler hands out (env DISTX_KAFKA_BROKERS)")
    .option("--kafka-sasl-mechanism <m>", "none|plain|scram-sha-256|scram-sha-512 (env DISTX_KAFKA_SASL_MECHANISM)")
    .option("--kafka-username <user>", "Kafka SASL user of this process's role (env DISTX_KAFKA_USERNAME)")
    .option("--kafka-password-file <file>", "file holding the Kafka SASL password; or env DISTX_KAFKA_PASSWORD (no flag: it would show in ps)")
    .option("--kafka-tls <on|off>", "TLS to the Kafka brokers (env DISTX_KAFKA_TLS)")
    .option("--kafka-ca-file <pem>", "CA that signed the brokers' certificates; implies --kafka-tls (env DISTX_KAFKA_CA_FILE)")
    .option("-w, --workers <n>", "kernel worker threads; 0 = one per core (env DISTX_WORKERS)")
    .option("--reserve-cores <n>", "cores left to this host's own work: at most (cores - n) workers (env DISTX_RESERVE_CORES)")
    .option("--max-host-load <f>", "share the machine: above this host load (0..1 of the cores busy with other work than ours) take no new work (env DISTX_MAX_HOST_LOAD)")
    .option("--give-back-host-load <f>", "above this host load give unstarted tasks back at once (default: after --host-load-grace-ms)")
    .option("--host-load-grace-ms <ms>", "how long to back off before giving unstarted tasks back (default 10000)")
    .option("--memory-limit-mb <mib>", "default kernel memory cap per task, MiB")
    .option("--max-memory-limit-mb <mib>", "largest kernel memory cap a job may ask for, MiB")
    .option("--kernel-log-bytes <n>", "what a kernel may log per task (env.log), bytes; more is dropped and counted (default 4096, at most 32768; env DISTX_KERNEL_LOG_BYTES)")
    .option("--kernel-log-lines <n>", "what a kernel may log per task, lines (default 100, at most 1024)")
    .option("-l, --labels <k=v,...>", "node labels for job node selectors")
    .option("--name <name>", "a name for this agent in logs")
    .option("--no-calibrate", "skip the start-up speed calibration")
    .option("--speed-factor <f>", "testing aid: run kernels this fraction as fast (0 < f ≤ 1)")
    .option("--drain-grace-ms <ms>", "how long SIGTERM lets running tasks finish")
    .option("--kafka-stall-ms <ms>", "with the Kafka bus: give up the session (the scheduler re-places this agent's tasks) after this long without a word from the broker; register again once it answers; 0 = never (env DISTX_KAFKA_STALL_MS)")
    .option("--connect-timeout-ms <ms>", "at start-up, give up if the scheduler is unreachable this long (default 0 = wait for ever); once registered, a lost scheduler is retried for ever")
    .option("--admin-port <port>", "admin HTTP port for /metrics, /healthz, /readyz; 0 picks a free one (env DISTX_ADMIN_PORT)")
    .option("--admin-host <host>", "address the admin HTTP server listens on (env DISTX_ADMIN_HOST)")
    .option("--gpu <auto|off>", "auto: run gpu.js kernels on a GPU when a GL context opens; off: gpu.js cpu mode only")
    .option("--gpu-memory-limit-mb <mib>", "heap cap of each GPU executor process, MiB")
    .option("--data-dir <dir>", "where this agent keeps its key and node certificate (under agent/)")
    .option("--join-token <token>", "join token from `distx join-token create` (first start only)")
    .option("--join-token-file <file>", "read the join token from this file")
    .option("--ca-hash <sha256:hex>", "the cluster CA pin printed with the join token")
    .option("--ca <file>", "the cluster CA certificate (instead of the pin)")
    .option("--insecure", "connect without TLS (only to a scheduler started with --insecure)")
    .option("--log-level <level>", "trace|debug|info|warn|error")
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      try {
        const { config: file, calibrate, ...flags } = opts;
        const config = loadConfig(agentConfigSchema, {
          file: file as string | undefined,
          section: "agent",
          // --no-calibrate sets calibrate=false; leave it unset otherwise so env/file can decide.
          flags: { ...flags, calibrate: calibrate === false ? false : undefined },
        });
        const log = createLogger("agent", config.logLevel).child({ agent: config.name });
        const agent = new Agent(config, log);
        // Refused for good (an incompatible version) after a reconnect: exit non-zero, so a
        // supervisor shows the failure (the message says what to install) instead of a silent agent.
        agent.onFatal((err) => {
          log.fatal({ event: "agent_refused", err: err.message }, err.message);
          void agent.stop(0).finally(() => process.exit(1));
        });
        onShutdownSignal(async (signal) => {
          log.info({ event: "shutdown", signal }, "draining running tasks before exit");
          await agent.stop();
          log.info({ event: "stopped" }, "agent stopped");
        });
        await agent.start();
      } catch (err) {
        fail(err);
      }
    });
  registerServiceCommands(agentCommand);
}
