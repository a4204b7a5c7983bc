// The node certificate's renewal: at 2/3 of its lifetime, and after a failure again after a
// tenth of what is left. The link owns the identity; this owns only the timer.
import type * as grpc from "@grpc/grpc-js";
import type { AgentConfig } from "../common/config.js";
import type { Logger } from "../common/logger.js";
import type { AgentServiceGrpcClient } from "../common/types.js";
import { renew, type NodeIdentity } from "./identity.js";

/** setTimeout cannot wait longer than ~24.8 days: further off, look again a day later. */
const LONGEST_WAIT_MS = 86_400_000;

export class CertRenewal {
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly config: AgentConfig,
    private readonly log: Logger,
    /** The client to renew through, and what to do with the new identity. */
    /** `expect`: told the new key before the renewal is asked for (Kafka assignments may be sealed to it before the answer comes). */
    private readonly link: { client(): AgentServiceGrpcClient; renewed(next: NodeIdentity): void; expect?(keyPem: string): void },
  ) {}

  schedule(id: NodeIdentity): void {
    if (this.stopped) return;
    const at = id.notBeforeMs + ((id.notAfterMs - id.notBeforeMs) * 2) / 3;
    clearTimeout(this.timer);
    if (at - Date.now() > LONGEST_WAIT_MS) {
      this.timer = setTimeout(() => this.schedule(id), LONGEST_WAIT_MS);
      this.timer.unref();
      return;
    }
    this.timer = setTimeout(() => {
      renew(this.config, id, this.link.client(), this.link.expect?.bind(this.link)).then(
        (next) => {
          this.link.renewed(next);
          if (id.notAfterMs <= Date.now()) {
            // Stopped or cut off past its renewal: the scheduler took the proof of the old key.
            this.log.warn(
              { event: "cert_renewed_after_expiry", nodeId: next.nodeId, expiredAt: new Date(id.notAfterMs).toISOString(), notAfter: new Date(next.notAfterMs).toISOString() },
              "the node certificate had expired (agent stopped or cut off past its renewal); renewed as the same node",
            );
          } else this.log.info({ event: "cert_renewed", nodeId: next.nodeId, notAfter: new Date(next.notAfterMs).toISOString() }, "node certificate renewed");
          this.schedule(next);
        },
        (err: Error) => {
          this.log.warn({ event: "cert_renew_failed", err: (err as grpc.ServiceError).details || err.message }, "could not renew the node certificate; retrying");
          clearTimeout(this.timer);
          if (this.stopped) return;
          this.timer = setTimeout(() => this.schedule(id), Math.max(1000, (id.notAfterMs - Date.now()) / 10));
          this.timer.unref();
        },
      );
    }, Math.max(0, at - Date.now()));
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
