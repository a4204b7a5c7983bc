// One lifecycle state per daemon, instead of booleans that must agree with each other. Each
// daemon gives its transition table and why /readyz says no in each state; this class keeps the
// one current state, logs every change ("<daemon>_state"), and ignores transitions the table
// does not allow (so a late event, such as a reconnect while stopping, cannot undo a stop).
import type { Logger } from "./logger.js";

export interface LifecycleSpec<S extends string> {
  /** The daemon's name: the log event is `${daemon}_state`. */
  daemon: string;
  initial: S;
  /** For each state, the states it may move to. */
  allowed: Readonly<Record<S, readonly S[]>>;
  /** Why /readyz says no, per state; a state missing here is ready. */
  notReady: Readonly<Partial<Record<S, string>>>;
}

export class Lifecycle<S extends string> {
  private current: S;

  constructor(
    private readonly spec: LifecycleSpec<S>,
    private readonly log: Logger,
  ) {
    this.current = spec.initial;
  }

  get state(): S {
    return this.current;
  }

  /** Moves to `next` when the table allows it; returns whether it did. */
  to(next: S, detail?: Record<string, unknown>): boolean {
    const from = this.current;
    if (!this.spec.allowed[from].includes(next)) return false;
    this.current = next;
    this.log.info({ event: `${this.spec.daemon}_state`, from, to: next, ...detail }, `${this.spec.daemon} ${next}`);
    return true;
  }

  /** What /readyz reports: undefined when ready, else why not. */
  notReady(): string | undefined {
    return this.spec.notReady[this.current];
  }
}
