// grpc-js keeps a server call's HTTP/2 stream, socket and message decoder on the call under its
// interceptors (ServerInterceptingCall → nextCall → … → BaseServerInterceptingCall, grpc-js
// 1.10+); a handler's call reaches that chain through `.call`. Not public API: each user says what
// it reads there, and its test fails if an upgrade moves it (stream-reset.ts, peer-tls.ts,
// inbound-budget.ts).

/** The first link of the chain from `start` for which `pick` answers, or undefined. */
export function findInCallChain<T>(start: unknown, pick: (link: object) => T | undefined): T | undefined {
  let c = start;
  for (let depth = 0; depth < 8 && typeof c === "object" && c !== null; depth++) {
    const found = pick(c);
    if (found !== undefined) return found;
    c = (c as { nextCall?: unknown }).nextCall;
  }
  return undefined;
}
