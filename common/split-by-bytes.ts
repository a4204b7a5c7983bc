// Splitting batches so no one message grows with how much happens to be sent at once.

/**
 * Bytes one session message (scheduler → agent assignments, agent → scheduler updates) may hold
 * before its batch is split: far below the 256 MiB message limit, large enough that small tasks
 * still travel many to a message.
 */
export const SESSION_MESSAGE_BUDGET_BYTES = 4 * 1024 * 1024;

/**
 * Splits a batch into runs whose payloads fit one message or record. An item larger than the
 * budget goes alone (the transport's own limit is then the real one).
 */
export function splitByBytes<T>(items: T[], size: (item: T) => number, budget: number): T[][] {
  const out: T[][] = [];
  let run: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const n = size(item) + 64;
    if (run.length > 0 && bytes + n > budget) {
      out.push(run);
      run = [];
      bytes = 0;
    }
    run.push(item);
    bytes += n;
  }
  if (run.length > 0) out.push(run);
  return out;
}
