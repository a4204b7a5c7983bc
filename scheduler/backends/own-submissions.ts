// The submissions this scheduler process appended to the log and has not read back yet. The
// active scheduler consumes the submissions topic it writes (a job journaled but never recorded,
// its writer dead, is adopted from there), so it reads every job it accepted back, and decoding
// each one only to find the job already held cost a decode of its inputs per task. A record is
// passed over undecoded only when this process wrote a record of that key and size, and the
// scheduler still holds the job (BusHandlers.holds): exactly where adopt() would have returned at
// once. A standby or a restarted scheduler has written nothing, so it decodes and adopts every
// record as before; a record seen twice (a rebalance) is decoded the second time.

/** Entries kept at most: a shared consumer group may hand our records to another scheduler, so some are never read back here. */
const KEPT = 65_536;

export class OwnSubmissions {
  /** Job id → the byte length of the value appended. */
  private readonly written = new Map<string, number>();

  /**
   * Sends a submission of `bytes` for `jobId`, noted before it is sent (the broker may deliver it
   * back before the send resolves) and forgotten when the send fails.
   */
  async append(jobId: string, bytes: number, send: () => Promise<void>): Promise<void> {
    this.written.delete(jobId);
    this.written.set(jobId, bytes);
    if (this.written.size > KEPT) this.written.delete(this.written.keys().next().value as string);
    try {
      await send();
    } catch (err) {
      this.written.delete(jobId);
      throw err;
    }
  }

  /**
   * Whether this record is the one this process appended for a job it still holds (then it is
   * skipped undecoded). Consumes the entry: the next record of that key is decoded.
   */
  readBack(key: Buffer | null, value: Buffer, holds: ((jobId: string) => boolean) | undefined): boolean {
    if (!holds || !key || this.written.size === 0) return false;
    const jobId = key.toString("utf8");
    const bytes = this.written.get(jobId);
    if (bytes === undefined) return false;
    this.written.delete(jobId);
    return bytes === value.length && holds(jobId);
  }
}
