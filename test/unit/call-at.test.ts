// callAt: a session's end at its certificate's expiry, which may be 30 days away (beyond what one
// setTimeout can wait: it would fire at once, ending every session as it opened).
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { callAt } from "../../common/call-at.js";

const DAY = 86_400_000;

beforeEach(() => void vi.useFakeTimers({ now: Date.UTC(2026, 0, 1) }));
afterEach(() => void vi.useRealTimers());

it("fires at a time 30 days away, not before", () => {
  const fired: number[] = [];
  const at = Date.now() + 30 * DAY;
  callAt(at, () => fired.push(Date.now()));
  vi.advanceTimersByTime(1000);
  expect(fired).toEqual([]);
  vi.advanceTimersByTime(30 * DAY - 1001);
  expect(fired).toEqual([]);
  vi.advanceTimersByTime(1);
  expect(fired).toEqual([at]);
});

it("fires at once for a time already past, and never once cancelled", () => {
  const fired: string[] = [];
  callAt(Date.now() - 5, () => fired.push("past"));
  const c = callAt(Date.now() + 2 * DAY, () => fired.push("cancelled"));
  vi.advanceTimersByTime(DAY);
  c.cancel();
  vi.advanceTimersByTime(2 * DAY);
  expect(fired).toEqual(["past"]);
});
