// Small helpers shared by the CLI commands.
import Table from "cli-table3";
import { DistributeXError } from "../client/index.js";
import { ConfigError } from "../common/config.js";

/** Thrown for a user mistake: printed as one line, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

export function fail(err: unknown): never {
  if (err instanceof UsageError || err instanceof ConfigError) {
    console.error(`distx: ${err.message}`);
    process.exit(2);
  }
  if (err instanceof DistributeXError) {
    console.error(`distx: ${err.codeName}: ${err.details}`);
    process.exit(1);
  }
  console.error(`distx: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}

export function parseIntOption(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n)) throw new UsageError(`${name} must be a whole number, got ${JSON.stringify(value)}`);
    return n;
  };
}

export const formatMs = (ms: number): string =>
  ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : ms < 1000 ? `${ms.toFixed(1)} ms` : `${(ms / 1000).toFixed(2)} s`;

export const formatBytes = (n: number): string => {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
};

/** Installs SIGINT/SIGTERM handlers that run `stop` once; a second signal exits at once. */
export function onShutdownSignal(stop: (signal: string) => Promise<void>): void {
  let stopping = false;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      if (stopping) {
        process.exit(130);
      }
      stopping = true;
      stop(signal).then(
        () => process.exit(process.exitCode ?? 0),
        (err) => {
          console.error(err);
          process.exit(1);
        },
      );
    });
  }
}

/** A table that is coloured only on a terminal, so piped output stays plain text. */
export function table(head: string[]): InstanceType<typeof Table> {
  const plain = !process.stdout.isTTY;
  return new Table({ head, style: plain ? { head: [], border: [] } : {} });
}
