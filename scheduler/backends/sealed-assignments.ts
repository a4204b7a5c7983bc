// The records of a node's assignments partition (assignments and cancels), sealed to the node's
// certificate key in a secure cluster (common/record-seal.ts): any agent's Kafka principal can
// read the whole topic, only the node's key opens its records. --insecure clusters send them in
// clear, as before; a secure one never does.
import { failedPrecondition } from "../../common/errors.js";
import type { OutMessage } from "../../common/kafka-wire.js";
import { seal, type SealRecipient } from "../../common/record-seal.js";

export function assignmentsRecord(
  where: { topic: string; partition: number },
  nodeId: string,
  value: Buffer,
  sealTo: SealRecipient | undefined,
  sealRequired: boolean,
): OutMessage {
  if (!sealTo) {
    if (sealRequired) throw failedPrecondition(`no certificate key is known for node ${nodeId}: its assignments cannot be sealed, and a secure cluster never sends them in clear`);
    return { ...where, key: nodeId, value };
  }
  const sealed = seal(where.topic, nodeId, value, sealTo);
  return { ...where, key: nodeId, value: sealed.value, headers: sealed.headers };
}
