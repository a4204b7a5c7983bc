// Structured JSON logs (pino). Daemons log to stdout, one JSON object per line.
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(role: string, level: string = process.env.DISTX_LOG_LEVEL ?? "info"): Logger {
  return pino({
    name: `distx-${role}`,
    level,
    base: { role, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Kernel bytes and task payloads never reach the log; redact anything that looks like a credential.
    redact: { paths: ["*.password", "*.token", "*.secret", "*.authorization", "*.sasl"], censor: "[redacted]" },
  });
}
