// The active scheduler's writes, fenced by its lease. A scheduler paused (SIGSTOP, a long GC, a
// stalled VM) past the lease's ttl resumes with requests and records queued in its sockets, and
// handles some of them before its next renewal tells it the lease is gone. Results are recorded
// first-wins, so one stale write (a cancel the client never saw acknowledged) would outlive the
// new leader's true one. Every write therefore first checks that Redis confirmed the lease
// within the last ttl; otherwise it fails as retryable, and the store-write retries wait until
// the renewal answers (trusted again) or the scheduler steps down.
import { unavailable } from "../../common/errors.js";
import type { StateStore } from "./types.js";

/**
 * The StateStore calls that only read (and close). Every other call is fenced: a write method
 * added later is fenced without anyone remembering to list it (a forgotten one would have let a
 * deposed leader write).
 */
export const UNFENCED = new Set<string>([
  "getKernel",
  "getKernelRegistration",
  "listKernelRegistrations",
  "staleKernelRegistrations",
  "getJobMeta",
  "getResults",
  "getJobInputs",
  "getJobInputRefs",
  "readBlob",
  "getOutputRef",
  "readOutput",
  "unfinishedJobs",
  "finishedJobs",
  "getCachedResults",
  "close",
]);

export function fenceWrites(store: StateStore, lease: { readonly trusted: boolean }): StateStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      if (typeof prop !== "string" || UNFENCED.has(prop)) return value.bind(target);
      return (...args: unknown[]) => {
        if (!lease.trusted) {
          return Promise.reject(unavailable("this scheduler's lease is not confirmed (it was paused or cut off from Redis); not writing until it is; retry is safe"));
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}
