// grpc-js sets the TLS server name to the scheduler's host even when that host is an IP address
// (127.0.0.1 in every local cluster), and Node then warns DEP0123 on every connection's first
// use. The certificate is still checked against the IP (our scheduler certificates carry IP
// SANs), so the warning says nothing the user can act on; this drops that one warning only.
const emitWarning = process.emitWarning.bind(process) as (...args: unknown[]) => void;
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const code = typeof rest[0] === "object" && rest[0] !== null ? (rest[0] as { code?: string }).code : rest[1];
  if (code === "DEP0123") return;
  emitWarning(warning, ...rest);
}) as typeof process.emitWarning;
