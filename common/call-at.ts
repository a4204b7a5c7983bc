// Runs a function at a wall-clock time that may be weeks away (a node certificate's expiry).
// setTimeout fires at once for a delay over 2^31-1 ms (~24.8 days; node certificates live 30),
// so a far time is waited for in steps of at most a day.

const LONGEST_STEP_MS = 86_400_000;

/** Calls `fn` once at `atMs` (at once if that has passed); the timers never keep the process alive. */
export function callAt(atMs: number, fn: () => void): { cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    const leftMs = atMs - Date.now();
    timer = setTimeout(() => (leftMs > LONGEST_STEP_MS ? arm() : fn()), Math.max(0, Math.min(leftMs, LONGEST_STEP_MS)));
    timer.unref();
  };
  arm();
  return { cancel: () => clearTimeout(timer) };
}
