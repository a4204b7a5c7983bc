// The node signature on agents' Kafka records (common/record-signature.ts) and the scheduler's
// check of it (scheduler/auth/record-verifier.ts), with real certificates from the cluster PKI
// code. The end-to-end refusals over a real broker: test/e2e/security/kafka-node-identity.test.ts.
import { X509Certificate } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { CERT_HEADER, recordSigner, SIGNATURE_HEADER, type SigningIdentity } from "../../common/record-signature.js";
import { createCa, createCsr, signNodeCsr } from "../../scheduler/auth/pki.js";
import { RecordVerifier } from "../../scheduler/auth/record-verifier.js";
import { Revocations } from "../../scheduler/auth/revocations.js";

const TOPIC = "distx.task-events";
let ca: { certPem: string; keyPem: string };
let nodeA: SigningIdentity & { nodeId: string };
let nodeB: SigningIdentity & { nodeId: string };
let revocations: Revocations;
let verifier: RecordVerifier;

async function node(nodeId: string, caPair = ca, lifetimeMs?: number): Promise<SigningIdentity & { nodeId: string }> {
  const { csrPem, keyPem } = await createCsr();
  const { certPem } = await signNodeCsr(caPair.certPem, caPair.keyPem, csrPem, nodeId, lifetimeMs);
  return { nodeId, keyPem, certPem };
}

beforeAll(async () => {
  ca = await createCa();
  nodeA = await node("node-aaaaaaaa");
  nodeB = await node("node-bbbbbbbb");
  revocations = Revocations.inMemory();
  verifier = new RecordVerifier(() => [new X509Certificate(ca.certPem)], revocations);
});

const value = Buffer.from("one turn's updates");
const check = (key: string | null, v: Buffer, headers?: Record<string, Buffer | string | (Buffer | string)[]>, topic = TOPIC, nowMs?: number) =>
  verifier.verify(topic, key === null ? null : Buffer.from(key), v, headers, nowMs);

describe("record signatures", () => {
  it("a record signed by its node proves that node", async () => {
    const headers = recordSigner(() => nodeA).headers(TOPIC, nodeA.nodeId, value);
    expect(headers[SIGNATURE_HEADER]).toHaveLength(64);
    expect(await check(nodeA.nodeId, value, headers)).toEqual({ nodeId: nodeA.nodeId });
  });

  it("refuses a record without a signature, certificate or key", async () => {
    const headers = recordSigner(() => nodeA).headers(TOPIC, nodeA.nodeId, value);
    expect(await check(nodeA.nodeId, value)).toEqual({ rejected: "unsigned" });
    expect(await check(nodeA.nodeId, value, { [SIGNATURE_HEADER]: headers[SIGNATURE_HEADER] })).toEqual({ rejected: "unsigned" });
    expect(await check(nodeA.nodeId, value, { [CERT_HEADER]: headers[CERT_HEADER] })).toEqual({ rejected: "unsigned" });
    expect(await check(null, value, headers)).toEqual({ rejected: "unsigned" });
    // Repeated headers: which one counts is what a forger would play with.
    expect(await check(nodeA.nodeId, value, { ...headers, [SIGNATURE_HEADER]: [headers[SIGNATURE_HEADER], headers[SIGNATURE_HEADER]] })).toEqual({ rejected: "unsigned" });
  });

  it("refuses a record another node signed, claiming this one", async () => {
    const headers = recordSigner(() => nodeB).headers(TOPIC, nodeA.nodeId, value);
    expect(await check(nodeA.nodeId, value, headers)).toEqual({ rejected: "claims_other_node" });
  });

  it("refuses a changed value, key or topic, and a signature of the wrong size", async () => {
    const headers = recordSigner(() => nodeA).headers(TOPIC, nodeA.nodeId, value);
    expect(await check(nodeA.nodeId, Buffer.from("one turn's updateZ"), headers)).toEqual({ rejected: "bad_signature" });
    // A load sample's signature does not make a task-events record.
    expect(await check(nodeA.nodeId, value, headers, "distx.node-load")).toEqual({ rejected: "bad_signature" });
    expect(await check(nodeA.nodeId, value, { ...headers, [SIGNATURE_HEADER]: headers[SIGNATURE_HEADER].subarray(0, 63) })).toEqual({ rejected: "bad_signature" });
    const flipped = Buffer.from(headers[SIGNATURE_HEADER]);
    flipped[10]! ^= 1;
    expect(await check(nodeA.nodeId, value, { ...headers, [SIGNATURE_HEADER]: flipped })).toEqual({ rejected: "bad_signature" });
  });

  it("refuses a certificate from another CA, garbage, an oversized one, and one out of its validity", async () => {
    const rogue = await node(nodeA.nodeId, await createCa("rogue"));
    expect(await check(nodeA.nodeId, value, recordSigner(() => rogue).headers(TOPIC, nodeA.nodeId, value))).toEqual({ rejected: "unknown_signer" });
    const headers = recordSigner(() => nodeA).headers(TOPIC, nodeA.nodeId, value);
    expect(await check(nodeA.nodeId, value, { ...headers, [CERT_HEADER]: Buffer.from("not a certificate") })).toEqual({ rejected: "unknown_signer" });
    expect(await check(nodeA.nodeId, value, { ...headers, [CERT_HEADER]: Buffer.alloc(5000) })).toEqual({ rejected: "bad_signature" });
    // The CA certificate itself is not a node's.
    expect(await check(nodeA.nodeId, value, { ...headers, [CERT_HEADER]: new X509Certificate(ca.certPem).raw })).toEqual({ rejected: "unknown_signer" });
    expect(await check(nodeA.nodeId, value, headers, TOPIC, Date.now() + 40 * 86_400_000)).toEqual({ rejected: "unknown_signer" });
  });

  it("refuses a removed node's records, whichever of its certificates signed them", async () => {
    const c = await node("node-cccccccc");
    const renewed = await node("node-cccccccc");
    expect(await check(c.nodeId, value, recordSigner(() => c).headers(TOPIC, c.nodeId, value))).toEqual({ nodeId: c.nodeId });
    await revocations.revokeNode(c.nodeId);
    expect(await check(c.nodeId, value, recordSigner(() => c).headers(TOPIC, c.nodeId, value))).toEqual({ rejected: "removed_node" });
    expect(await check(c.nodeId, value, recordSigner(() => renewed).headers(TOPIC, c.nodeId, value))).toEqual({ rejected: "removed_node" });
  });

  it("signs with the current identity: a renewed key from the next record on", async () => {
    let current = nodeA;
    const signer = recordSigner(() => current);
    const first = signer.headers(TOPIC, nodeA.nodeId, value);
    current = await node(nodeA.nodeId);
    const second = signer.headers(TOPIC, nodeA.nodeId, value);
    expect(second[CERT_HEADER].equals(first[CERT_HEADER])).toBe(false);
    expect(await check(nodeA.nodeId, value, second)).toEqual({ nodeId: nodeA.nodeId });
  });
});
