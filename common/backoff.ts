// Capped exponential backoff with jitter, for reconnecting (agents to the scheduler, a starting
// scheduler to Kafka/Redis): waits double from
// `baseMs` up to `maxMs`, each drawn from [cap/2, cap] so many agents that lost the same
// scheduler do not all come back in the same instant.
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly baseMs = 200,
    private readonly maxMs = 10_000,
    private readonly random: () => number = Math.random,
  ) {}

  /** The wait before the next attempt. */
  next(): number {
    const cap = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.round(cap / 2 + this.random() * (cap / 2));
  }

  reset(): void {
    this.attempt = 0;
  }

  /** Attempts made since the last reset. */
  get attempts(): number {
    return this.attempt;
  }
}
