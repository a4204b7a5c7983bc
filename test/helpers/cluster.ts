// Starts a real local cluster (separate processes, real gRPC over loopback) for a test file.
import path from "node:path";
import { DistributeXClient } from "../../client/index.js";
import { repoRoot } from "../../common/paths.js";
import { LocalCluster, type LocalClusterOptions } from "../../cli/local-cluster.js";

export interface TestCluster {
  cluster: LocalCluster;
  /** Carries the cluster's admin token (and, once TLS lands, its CA): tests work unchanged either way. */
  client: DistributeXClient;
  address: string;
  /** The cluster's bootstrap admin token, for tests that build their own clients or metadata. */
  adminToken: string;
  stop(): Promise<void>;
}

export async function startTestCluster(name: string, options: Partial<LocalClusterOptions> = {}): Promise<TestCluster> {
  const cluster = new LocalCluster({
    agents: 2,
    workersPerAgent: 1,
    logs: path.join(repoRoot(), "test-output", "logs", `${name}-${Date.now()}`),
    schedulerArgs: ["--heartbeat-interval-ms", "200", "--agent-timeout-ms", "2000", "--drain-grace-ms", "2000"],
    ...options,
  });
  const address = await cluster.start();
  const client = new DistributeXClient(address, options.insecure ? {} : { tokenFile: cluster.adminTokenFile });
  return {
    cluster,
    client,
    address,
    adminToken: options.insecure ? "" : cluster.adminToken,
    async stop() {
      client.close();
      await cluster.stop(5000);
    },
  };
}
