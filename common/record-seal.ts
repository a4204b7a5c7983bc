// Assignment confidentiality on Kafka. Every agent reads with the same Kafka principal, and ACLs
// are per topic, so any agent's password reads every node's assignments partition. The scheduler
// therefore seals each assignments record (assignments and cancels) to the certificate key of the
// node it is for: a fresh ephemeral P-256 key per record, ECDH with the node certificate's public
// key, HKDF-SHA-256 (salt: the ephemeral public key; info: topic, node id, the certificate's
// serial) to an AES-256-GCM key, and the value encrypted with the topic, the record key, the serial
// and the ephemeral key as associated data. Headers carry the ephemeral public key and the serial.
// Only that node's private key opens it; to any other agent it is ciphertext. The key is new per
// record, so the 12-byte nonce never repeats under one key. One ECDH per record on each side, and
// a record carries a dispatch round's batch of assignments.
//
// No downgrade: an agent of a secure cluster opens every record it reads and never decodes one
// that did not open (unsealed, bad headers, another key, tampered): it is dropped and counted.
import { createCipheriv, createDecipheriv, createECDH, createPrivateKey, hkdfSync, randomBytes, X509Certificate, type ECDH, type KeyObject } from "node:crypto";
import type { RecordHeaders, SigningIdentity } from "./record-signature.js";

export const EPHEMERAL_KEY_HEADER = "distx-seal-epk";
export const SEAL_SERIAL_HEADER = "distx-seal-serial";
/** An uncompressed P-256 point: 0x04, x, y. */
export const EPHEMERAL_KEY_BYTES = 65;
/** X.509 serials are at most 20 bytes (RFC 5280), 40 hex digits; leave room for a sign byte. */
export const MAX_SERIAL_CHARS = 64;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const DOMAIN = "distx-seal-v1\0";
const SERIAL_PATTERN = /^[0-9a-f]{1,64}$/;

/** Why an assignments record was dropped instead of read (distx_agent_unopened_records_total{reason}). */
export type SealRefusal = "unsealed" | "bad_header" | "other_key" | "bad_ciphertext";
export const SEAL_REFUSALS: readonly SealRefusal[] = ["unsealed", "bad_header", "other_key", "bad_ciphertext"];

/** Whom a record is sealed to: a node certificate's public key (P-256) and its serial. */
export interface SealRecipient {
  /** The uncompressed point of the certificate's public key. */
  readonly point: Buffer;
  /** Lower-case hex, as X509Certificate.serialNumber spells it, lowered. */
  readonly serial: string;
}

export type SealHeaders = Record<typeof EPHEMERAL_KEY_HEADER | typeof SEAL_SERIAL_HEADER, Buffer>;

const normalSerial = (serial: string): string => serial.toLowerCase();

function uncompressedPoint(key: KeyObject): Buffer {
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") throw new Error("the node certificate's key is not EC P-256");
  const jwk = key.export({ format: "jwk" });
  return Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, "base64url"), Buffer.from(jwk.y!, "base64url")]);
}

/** The recipient of a node certificate (PEM or DER); throws if its key is not P-256. */
export function sealRecipient(cert: string | Buffer | X509Certificate): SealRecipient {
  const x = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  return { point: uncompressedPoint(x.publicKey), serial: normalSerial(x.serialNumber) };
}

function lp(parts: (string | Buffer)[]): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    const b = typeof p === "string" ? Buffer.from(p, "utf8") : p;
    const n = Buffer.allocUnsafe(4);
    n.writeUInt32BE(b.length);
    out.push(n, b);
  }
  return Buffer.concat(out);
}

const info = (topic: string, nodeId: string, serial: string) => lp([DOMAIN, topic, nodeId, serial]);
const aad = (topic: string, nodeId: string, serial: string, epk: Buffer) => lp([DOMAIN, topic, nodeId, serial, epk]);
const derive = (secret: Buffer, epk: Buffer, topic: string, nodeId: string, serial: string): Buffer =>
  Buffer.from(hkdfSync("sha256", secret, epk, info(topic, nodeId, serial), 32));

/** The record `value` for node `nodeId` (its key) on `topic`, sealed to `to`. */
export function seal(topic: string, nodeId: string, value: Buffer, to: SealRecipient): { value: Buffer; headers: SealHeaders } {
  const ephemeral = createECDH("prime256v1");
  const epk = ephemeral.generateKeys();
  const key = derive(ephemeral.computeSecret(to.point), epk, topic, nodeId, to.serial);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(aad(topic, nodeId, to.serial, epk));
  const sealed = Buffer.concat([iv, cipher.update(value), cipher.final(), cipher.getAuthTag()]);
  return { value: sealed, headers: { [EPHEMERAL_KEY_HEADER]: epk, [SEAL_SERIAL_HEADER]: Buffer.from(to.serial, "ascii") } };
}

/** A node key that may open records: its serial, or none yet (a renewal's new key before its certificate came back). */
export interface OpeningKey {
  readonly ecdh: ECDH;
  readonly serial?: string;
}

export function openingKey(keyPem: string, certPem?: string): OpeningKey {
  const jwk = createPrivateKey(keyPem).export({ format: "jwk" });
  if (jwk.crv !== "P-256" || !jwk.d) throw new Error("the node key is not EC P-256");
  const ecdh = createECDH("prime256v1");
  ecdh.setPrivateKey(Buffer.from(jwk.d, "base64url"));
  return certPem ? { ecdh, serial: normalSerial(new X509Certificate(certPem).serialNumber) } : { ecdh };
}

function oneHeader(headers: RecordHeaders | undefined, name: string, max: number): Buffer | undefined | "bad" {
  const v = headers?.[name];
  if (v === undefined) return undefined;
  // A repeated header is not ours: which one would count is what a forger would exploit.
  if (Array.isArray(v)) return "bad";
  // Sizes are checked before anything is parsed.
  const b = typeof v === "string" ? Buffer.from(v, "utf8") : v;
  return b.length > max ? "bad" : b;
}

export type OpenResult = { value: Buffer; serial: string; refused?: undefined } | { refused: SealRefusal; value?: undefined };

/**
 * The plaintext of a sealed record, or why it cannot be had. `keys`: the node's keys, the ones
 * whose serial the record names first; a key without a serial (pending) is tried only when none
 * matches. Never throws.
 */
export function open(topic: string, nodeId: string, value: Buffer, headers: RecordHeaders | undefined, keys: readonly OpeningKey[]): OpenResult {
  const epk = oneHeader(headers, EPHEMERAL_KEY_HEADER, EPHEMERAL_KEY_BYTES);
  const serialBytes = oneHeader(headers, SEAL_SERIAL_HEADER, MAX_SERIAL_CHARS);
  if (epk === undefined && serialBytes === undefined) return { refused: "unsealed" };
  if (epk === undefined || serialBytes === undefined || epk === "bad" || serialBytes === "bad") return { refused: "bad_header" };
  if (epk.length !== EPHEMERAL_KEY_BYTES || epk[0] !== 4) return { refused: "bad_header" };
  const serial = serialBytes.toString("latin1");
  if (!SERIAL_PATTERN.test(serial)) return { refused: "bad_header" };
  if (value.length < IV_BYTES + TAG_BYTES) return { refused: "bad_ciphertext" };
  const matching = keys.filter((k) => k.serial === serial);
  const candidates = matching.length > 0 ? matching : keys.filter((k) => k.serial === undefined);
  if (candidates.length === 0) return { refused: "other_key" };
  for (const k of candidates) {
    let secret: Buffer;
    try {
      secret = k.ecdh.computeSecret(epk);
    } catch {
      return { refused: "bad_header" }; // not a point on the curve
    }
    const key = derive(secret, epk, topic, nodeId, serial);
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, value.subarray(0, IV_BYTES));
      decipher.setAAD(aad(topic, nodeId, serial, epk));
      decipher.setAuthTag(value.subarray(value.length - TAG_BYTES));
      const plain = Buffer.concat([decipher.update(value.subarray(IV_BYTES, value.length - TAG_BYTES)), decipher.final()]);
      return { value: plain, serial };
    } catch {
      // the next candidate, if any
    }
  }
  return { refused: matching.length > 0 ? "bad_ciphertext" : "other_key" };
}

/**
 * An agent's keys for opening its assignments: the current node key (from `current()`, so a
 * renewal takes effect at once), the previous one after a renewal until a record sealed to the
 * current serial has opened (the scheduler switches at the renewal and the partition is ordered,
 * so nothing for the old key comes after it), and, during a renewal, the new key before its
 * certificate is back (the scheduler may seal to it before the agent has the answer).
 */
export class NodeKeyRing {
  private cur?: { identity: SigningIdentity; key: OpeningKey };
  private previous?: OpeningKey;
  /** A renewal's new keys before the certificate is back, newest first (two: one whose answer was lost, and its retry). */
  private pending: { keyPem: string; key: OpeningKey }[] = [];
  /** Pending keys of renewals that were not the one that came back: kept, like `previous`, until the current serial is seen. */
  private stale: OpeningKey[] = [];
  /** Records dropped, by reason. */
  readonly refused = new Map<SealRefusal, number>();

  constructor(
    private readonly current: () => SigningIdentity | undefined,
    /** Told each record dropped (the agent's metric). */
    private readonly onRefused?: (reason: SealRefusal) => void,
  ) {}

  /** A renewal is about to ask for a certificate for `keyPem`. */
  expect(keyPem: string): void {
    this.pending = [{ keyPem, key: openingKey(keyPem) }, ...this.pending].slice(0, 2);
  }

  keys(): OpeningKey[] {
    const identity = this.current();
    if (identity && this.cur?.identity !== identity) {
      if (this.cur) this.previous = this.cur.key;
      this.cur = { identity, key: openingKey(identity.keyPem, identity.certPem) };
      // The renewal came back: its key is current now; an older pending one (its answer lost,
      // though the scheduler may have sealed to it) is kept until the current serial is seen.
      if (this.pending.some((p) => p.keyPem === identity.keyPem)) {
        this.stale = this.pending.filter((p) => p.keyPem !== identity.keyPem).map((p) => p.key);
        this.pending = [];
      }
    }
    return [this.cur?.key, this.previous, ...this.pending.map((p) => p.key), ...this.stale].filter((k): k is OpeningKey => k !== undefined);
  }

  open(topic: string, nodeId: string, value: Buffer, headers: RecordHeaders | undefined): OpenResult {
    const result = open(topic, nodeId, value, headers, this.keys());
    if (result.refused) {
      this.refused.set(result.refused, (this.refused.get(result.refused) ?? 0) + 1);
      this.onRefused?.(result.refused);
    } else if (result.serial === this.cur?.key.serial) {
      this.previous = undefined;
      this.stale = [];
    }
    return result;
  }

  /** Whether the previous key is still kept (tests). */
  get holdsPrevious(): boolean {
    return this.previous !== undefined;
  }
}
