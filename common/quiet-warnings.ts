// LEAD: only the agent still needs this. Clients (DistributeXClient, the CLI) and the tests in
// test/security open TLS channels through common/secure-channel.ts, which sends no IP address as
// the TLS server name and checks the certificate's IP SANs itself, so they never trigger DEP0123.
// The agent's channels (agent/identity.ts: join, agentClient, mtlsCredentials; agent/agent.ts:
// makeClients) still use grpc.credentials.createSsl with the scheduler's IP, which grpc-js sends
// as the server name, so Node warns DEP0123 once per agent process. When those use
// secureChannel(address, { ca, key, cert }) (credentials and options per address), delete this
// file and its import in cli/main.ts.
const emitWarning = process.emitWarning.bind(process) as (...args: unknown[]) => void;
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const code = typeof rest[0] === "object" && rest[0] !== null ? (rest[0] as { code?: string }).code : rest[1];
  if (code === "DEP0123") return;
  emitWarning(warning, ...rest);
}) as typeof process.emitWarning;
