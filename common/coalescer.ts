// Collects items produced in one turn of the event loop and hands them over together at the
// end of it. Small tasks are bound by per-message costs (framing, syscalls, callbacks), so
// assignments and task updates that happen together travel together; nothing waits longer
// than the current turn.
export class Coalescer<T> {
  private items: T[] = [];
  private scheduled = false;

  constructor(private readonly deliver: (items: T[]) => void) {}

  push(item: T): void {
    this.items.push(item);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Delivers what is pending now (e.g. before a message that must not overtake it). */
  flush(): void {
    this.scheduled = false;
    if (this.items.length === 0) return;
    const batch = this.items;
    this.items = [];
    this.deliver(batch);
  }

  /** Drops what is pending (the destination is gone). */
  clear(): void {
    this.items = [];
  }
}
