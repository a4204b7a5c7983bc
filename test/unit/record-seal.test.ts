// Sealed assignments records (common/record-seal.ts): the scheduler seals each assignments record
// to its node's certificate key; only that node's key opens it, and anything changed, unsealed or
// sealed to another key is refused, never read as plaintext. Real keys and certificates from the
// cluster PKI code. Over a real broker: test/e2e/security/kafka-assignment-seal.test.ts.
import { beforeAll, describe, expect, it } from "vitest";
import {
  EPHEMERAL_KEY_HEADER,
  NodeKeyRing,
  open,
  openingKey,
  seal,
  SEAL_SERIAL_HEADER,
  sealRecipient,
  type SealHeaders,
} from "../../common/record-seal.js";
import type { SigningIdentity } from "../../common/record-signature.js";
import { createCa, createCsr, signNodeCsr } from "../../scheduler/auth/pki.js";
import { assignmentsRecord } from "../../scheduler/backends/sealed-assignments.js";

const TOPIC = "distx.assignments";
const A = "node-aaaaaaaa";
const B = "node-bbbbbbbb";
let ca: { certPem: string; keyPem: string };
let nodeA: SigningIdentity;
let nodeA2: SigningIdentity; // A after a renewal: a new key and certificate
let nodeB: SigningIdentity;

async function identity(nodeId: string): Promise<SigningIdentity> {
  const { csrPem, keyPem } = await createCsr();
  const { certPem } = await signNodeCsr(ca.certPem, ca.keyPem, csrPem, nodeId);
  return { keyPem, certPem };
}

beforeAll(async () => {
  ca = await createCa();
  [nodeA, nodeA2, nodeB] = await Promise.all([identity(A), identity(A), identity(B)]);
});

const plain = Buffer.from("assignment: task 7 of job j-1, input: SECRET-INPUT-BYTES");
const keysOf = (...ids: SigningIdentity[]) => ids.map((id) => openingKey(id.keyPem, id.certPem));
const sealA = (value = plain, topic = TOPIC, nodeId = A) => seal(topic, nodeId, value, sealRecipient(nodeA.certPem));
const flip = (b: Buffer, at: number) => {
  const c = Buffer.from(b);
  c[at]! ^= 0x01;
  return c;
};

describe("sealed assignments records", () => {
  it("opens with the node's key, and the ciphertext holds none of the plaintext", () => {
    const sealed = sealA();
    expect(sealed.headers[EPHEMERAL_KEY_HEADER]).toHaveLength(65);
    expect(sealed.headers[SEAL_SERIAL_HEADER].toString()).toBe(sealRecipient(nodeA.certPem).serial);
    expect(sealed.value.includes(Buffer.from("SECRET"))).toBe(false);
    expect(sealed.value.length).toBe(plain.length + 12 + 16);
    const opened = open(TOPIC, A, sealed.value, sealed.headers, keysOf(nodeA));
    expect(opened.value?.equals(plain)).toBe(true);
    // A fresh ephemeral key per record: the same value never seals the same way twice.
    expect(sealA().value.equals(sealed.value)).toBe(false);
    expect(sealA().headers[EPHEMERAL_KEY_HEADER].equals(sealed.headers[EPHEMERAL_KEY_HEADER])).toBe(false);
  });

  it("another node's key cannot open it (wrong node), nor can a key that claims A's serial", () => {
    const sealed = sealA();
    expect(open(TOPIC, A, sealed.value, sealed.headers, keysOf(nodeB))).toEqual({ refused: "other_key" });
    // B's key labelled with A's serial: the serial matches, the key does not.
    const forged = [{ ...openingKey(nodeB.keyPem), serial: sealRecipient(nodeA.certPem).serial }];
    expect(open(TOPIC, A, sealed.value, sealed.headers, forged)).toEqual({ refused: "bad_ciphertext" });
    // A's renewed key (a new key, a new serial) does not open a record sealed to the old one.
    expect(open(TOPIC, A, sealed.value, sealed.headers, keysOf(nodeA2))).toEqual({ refused: "other_key" });
  });

  it("refuses a changed value, topic or record key (associated data)", () => {
    const sealed = sealA();
    for (const at of [0, 11, 12, 20, sealed.value.length - 17, sealed.value.length - 1]) {
      expect(open(TOPIC, A, flip(sealed.value, at), sealed.headers, keysOf(nodeA))).toEqual({ refused: "bad_ciphertext" });
    }
    expect(open("distx.task-events", A, sealed.value, sealed.headers, keysOf(nodeA))).toEqual({ refused: "bad_ciphertext" });
    expect(open(TOPIC, "node-aaaaaaab", sealed.value, sealed.headers, keysOf(nodeA))).toEqual({ refused: "bad_ciphertext" });
    expect(open(TOPIC, A, sealed.value.subarray(0, 27), sealed.headers, keysOf(nodeA))).toEqual({ refused: "bad_ciphertext" });
    expect(open(TOPIC, A, Buffer.concat([sealed.value, Buffer.from([0])]), sealed.headers, keysOf(nodeA))).toEqual({ refused: "bad_ciphertext" });
  });

  it("refuses a changed ephemeral key or serial header", () => {
    const sealed = sealA();
    const keys = keysOf(nodeA);
    const epk = sealed.headers[EPHEMERAL_KEY_HEADER];
    const serial = sealed.headers[SEAL_SERIAL_HEADER];
    // Another valid point (a different ephemeral key): the derived key differs.
    const other = sealA().headers[EPHEMERAL_KEY_HEADER];
    expect(open(TOPIC, A, sealed.value, { ...sealed.headers, [EPHEMERAL_KEY_HEADER]: other }, keys)).toEqual({ refused: "bad_ciphertext" });
    // Not a point on the curve, or not an uncompressed point.
    expect(open(TOPIC, A, sealed.value, { ...sealed.headers, [EPHEMERAL_KEY_HEADER]: flip(epk, 64) }, keys).refused).toMatch(/bad_header|bad_ciphertext/);
    expect(open(TOPIC, A, sealed.value, { ...sealed.headers, [EPHEMERAL_KEY_HEADER]: flip(epk, 0) }, keys)).toEqual({ refused: "bad_header" });
    expect(open(TOPIC, A, sealed.value, { ...sealed.headers, [EPHEMERAL_KEY_HEADER]: epk.subarray(0, 64) }, keys)).toEqual({ refused: "bad_header" });
    // Another serial: no key of this node has it.
    expect(open(TOPIC, A, sealed.value, { ...sealed.headers, [SEAL_SERIAL_HEADER]: Buffer.from("01") }, keys)).toEqual({ refused: "other_key" });
    // Not lower-case hex.
    expect(open(TOPIC, A, sealed.value, { ...sealed.headers, [SEAL_SERIAL_HEADER]: Buffer.from(serial.toString().toUpperCase() + "Z") }, keys)).toEqual({ refused: "bad_header" });
    expect(open(TOPIC, A, sealed.value, { ...sealed.headers, [SEAL_SERIAL_HEADER]: Buffer.alloc(0) }, keys)).toEqual({ refused: "bad_header" });
    // Repeated headers: which one would count is what a forger would play with.
    expect(open(TOPIC, A, sealed.value, { ...sealed.headers, [EPHEMERAL_KEY_HEADER]: [epk, epk] }, keys)).toEqual({ refused: "bad_header" });
    expect(open(TOPIC, A, sealed.value, { ...sealed.headers, [SEAL_SERIAL_HEADER]: [serial, serial] }, keys)).toEqual({ refused: "bad_header" });
  });

  it("refuses oversize headers before parsing them", () => {
    const sealed = sealA();
    const keys = keysOf(nodeA);
    const huge = Buffer.alloc(1 << 20, 0x61);
    expect(open(TOPIC, A, sealed.value, { ...sealed.headers, [EPHEMERAL_KEY_HEADER]: huge }, keys)).toEqual({ refused: "bad_header" });
    expect(open(TOPIC, A, sealed.value, { ...sealed.headers, [SEAL_SERIAL_HEADER]: huge }, keys)).toEqual({ refused: "bad_header" });
    expect(open(TOPIC, A, sealed.value, { ...sealed.headers, [SEAL_SERIAL_HEADER]: "a".repeat(65) }, keys)).toEqual({ refused: "bad_header" });
  });

  it("never reads an unsealed record as plaintext (no downgrade), nor one with half the headers", () => {
    const sealed = sealA();
    const keys = keysOf(nodeA);
    expect(open(TOPIC, A, plain, undefined, keys)).toEqual({ refused: "unsealed" });
    expect(open(TOPIC, A, plain, {}, keys)).toEqual({ refused: "unsealed" });
    const half: Partial<SealHeaders> = { [EPHEMERAL_KEY_HEADER]: sealed.headers[EPHEMERAL_KEY_HEADER] };
    expect(open(TOPIC, A, sealed.value, half, keys)).toEqual({ refused: "bad_header" });
    expect(open(TOPIC, A, sealed.value, { [SEAL_SERIAL_HEADER]: sealed.headers[SEAL_SERIAL_HEADER] }, keys)).toEqual({ refused: "bad_header" });
  });

  it("a secure bus refuses to build a record for a node without a key; an insecure one sends it in clear", () => {
    const at = { topic: TOPIC, partition: 3 };
    expect(() => assignmentsRecord(at, A, plain, undefined, true)).toThrow(/no certificate key is known for node node-aaaaaaaa/);
    expect(assignmentsRecord(at, A, plain, undefined, false)).toEqual({ ...at, key: A, value: plain });
    const rec = assignmentsRecord(at, A, plain, sealRecipient(nodeA.certPem), true);
    expect(rec.value.includes(Buffer.from("SECRET"))).toBe(false);
    expect(open(TOPIC, A, rec.value, rec.headers, keysOf(nodeA)).value?.equals(plain)).toBe(true);
  });
});

describe("the agent's key ring across a renewal", () => {
  it("opens records for the old key after the renewal, and the new key's before the certificate is back", () => {
    let current = nodeA;
    const ring = new NodeKeyRing(() => current);
    const old1 = sealA(Buffer.from("before"));
    expect(ring.open(TOPIC, A, old1.value, old1.headers).value?.toString()).toBe("before");
    // The renewal: the agent makes its new key and asks; the scheduler seals to it at once.
    ring.expect(nodeA2.keyPem);
    const early = seal(TOPIC, A, Buffer.from("sealed to the new key, certificate not back yet"), sealRecipient(nodeA2.certPem));
    const old2 = sealA(Buffer.from("queued before the renewal"));
    expect(ring.open(TOPIC, A, early.value, early.headers).value?.toString()).toMatch(/new key/);
    // The answer comes: the new identity is current; the old key is kept for what is still queued.
    current = nodeA2;
    expect(ring.open(TOPIC, A, old2.value, old2.headers).value?.toString()).toBe("queued before the renewal");
    expect(ring.holdsPrevious).toBe(true);
    const next = seal(TOPIC, A, Buffer.from("after"), sealRecipient(nodeA2.certPem));
    expect(ring.open(TOPIC, A, next.value, next.headers).value?.toString()).toBe("after");
    // A record for the current serial came: nothing for the old key follows it in the partition.
    expect(ring.holdsPrevious).toBe(false);
    expect(ring.open(TOPIC, A, old1.value, old1.headers)).toEqual({ refused: "other_key" });
    expect(ring.refused.get("other_key")).toBe(1);
  });

  it("a renewal whose answer was lost: records sealed to its key still open after the retry succeeds", async () => {
    let current = nodeA;
    const ring = new NodeKeyRing(() => current);
    const lost = await identity(A); // issued by the scheduler (which seals to it), answer never came back
    ring.expect(lost.keyPem);
    ring.expect(nodeA2.keyPem); // the retry
    const toLost = seal(TOPIC, A, Buffer.from("sealed to the lost renewal"), sealRecipient(lost.certPem));
    current = nodeA2;
    expect(ring.open(TOPIC, A, toLost.value, toLost.headers).value?.toString()).toBe("sealed to the lost renewal");
    // Once the current serial is seen, nothing for the lost key can follow: it is let go.
    const next = seal(TOPIC, A, Buffer.from("after"), sealRecipient(nodeA2.certPem));
    expect(ring.open(TOPIC, A, next.value, next.headers).value?.toString()).toBe("after");
    const late = seal(TOPIC, A, Buffer.from("too late"), sealRecipient(lost.certPem));
    expect(ring.open(TOPIC, A, late.value, late.headers)).toEqual({ refused: "other_key" });
  });

  it("counts what it drops, by reason", () => {
    const ring = new NodeKeyRing(() => nodeB);
    const sealed = sealA();
    ring.open(TOPIC, A, sealed.value, sealed.headers);
    ring.open(TOPIC, B, plain, undefined);
    ring.open(TOPIC, B, plain, undefined);
    expect(Object.fromEntries(ring.refused)).toEqual({ other_key: 1, unsealed: 2 });
  });
});
