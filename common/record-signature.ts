// Node identity on Kafka. Every agent writes with the same Kafka principal, and a consumer does
// not learn who produced a record, so the node id a record claims (its key) proves nothing. An
// agent therefore signs each task-event and node-load record with its node certificate's key
// (EC P-256, issued by the cluster CA at join) and attaches that certificate; the scheduler checks
// the certificate against its CA and revocation list and the signature against the certificate
// (scheduler/auth/record-verifier.ts) before it decodes the value. One signature per record, and
// a record carries one turn's batch of updates, so the cost is paid per batch.
//
// What is signed: SHA-256 over a domain tag, then the topic, the record key (the node id claimed)
// and the value, each length-prefixed, so that no field can be moved into another, a record
// cannot be replayed on another topic (a load sample as task events) or under another node id.
// The signature is ECDSA P-256 with SHA-256 over that 32-byte digest (IEEE P1363, 64 bytes).
import { createHash, createPrivateKey, sign, type KeyObject, X509Certificate } from "node:crypto";

export const SIGNATURE_HEADER = "distx-sig";
export const CERT_HEADER = "distx-cert";
/** IEEE P1363 encoding of a P-256 signature: r and s, 32 bytes each. */
export const SIGNATURE_BYTES = 64;
/** A node certificate (DER) is ~500 bytes; anything far larger is refused unparsed. */
export const MAX_CERT_BYTES = 4096;

const DOMAIN = Buffer.from("distx-record-v1\0");

/** Why a record was refused before its value was read (distx_rejected_updates_total{reason}). */
export type RecordRejectReason = "unsigned" | "bad_signature" | "unknown_signer" | "removed_node" | "claims_other_node";
export const RECORD_REJECT_REASONS: readonly RecordRejectReason[] = ["unsigned", "bad_signature", "unknown_signer", "removed_node", "claims_other_node"];

/** Kafka record headers as a consumer sees them (kafkajs's IHeaders). */
export type RecordHeaders = Record<string, Buffer | string | (Buffer | string)[] | undefined>;

/** Who wrote a record, proven by its signature; or why that cannot be told. */
export type RecordVerdict = { nodeId: string; rejected?: undefined } | { rejected: RecordRejectReason; nodeId?: undefined };

/** The scheduler's check of a record's signature (scheduler/auth/record-verifier.ts). Never throws. */
export type VerifyRecord = (topic: string, key: Buffer | null, value: Buffer, headers: RecordHeaders | undefined) => Promise<RecordVerdict>;

function lengthPrefix(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n);
  return b;
}

/** The digest a record's signature covers (hashed in place: a 512 KiB value is not copied). */
export function recordDigest(topic: string, key: Buffer | string, value: Buffer): Buffer {
  const t = Buffer.from(topic, "utf8");
  const k = typeof key === "string" ? Buffer.from(key, "utf8") : key;
  return createHash("sha256")
    .update(DOMAIN)
    .update(lengthPrefix(t.length))
    .update(t)
    .update(lengthPrefix(k.length))
    .update(k)
    .update(lengthPrefix(value.length))
    .update(value)
    .digest();
}

/** What a signed record carries besides its key and value. */
export type SignatureHeaders = Record<typeof SIGNATURE_HEADER | typeof CERT_HEADER, Buffer>;

export interface RecordSigner {
  headers(topic: string, key: string, value: Buffer): SignatureHeaders;
}

/** The parts of a node identity a signer needs (agent/identity.ts's NodeIdentity has them). */
export interface SigningIdentity {
  keyPem: string;
  certPem: string;
}

/**
 * Signs with whatever identity `current()` returns at the time, so a renewed certificate (a new
 * key) is used from the next record on. The parsed key and certificate are kept per identity.
 */
export function recordSigner(current: () => SigningIdentity): RecordSigner {
  let cached: { identity: SigningIdentity; key: KeyObject; certDer: Buffer } | undefined;
  return {
    headers(topic, key, value) {
      const identity = current();
      if (cached?.identity !== identity) {
        cached = { identity, key: createPrivateKey(identity.keyPem), certDer: new X509Certificate(identity.certPem).raw };
      }
      const signature = sign("sha256", recordDigest(topic, key, value), { key: cached.key, dsaEncoding: "ieee-p1363" });
      return { [SIGNATURE_HEADER]: signature, [CERT_HEADER]: cached.certDer };
    },
  };
}
