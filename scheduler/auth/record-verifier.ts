// The scheduler's side of Kafka node identity (common/record-signature.ts): a task-event or
// node-load record counts as coming from node N only if it carries a certificate the cluster CA
// issued for N, not revoked and within its validity, and a signature by that certificate's key
// over the topic, the key N and the value. Checked before the value is decoded; anything else is
// refused with a reason. Certificates are parsed and chain-checked once and then looked up by the
// hash of their bytes (bounded); the revocation list is asked on every record (a Set lookup).
import { createHash, verify, X509Certificate, type KeyObject } from "node:crypto";
import { CERT_HEADER, MAX_CERT_BYTES, recordDigest, SIGNATURE_BYTES, SIGNATURE_HEADER, type RecordHeaders, type RecordVerdict } from "../../common/record-signature.js";
import { nodeIdFromSubjectAltName } from "./pki.js";
import type { Revocations } from "./revocations.js";

interface TrustedCert {
  nodeId: string;
  serial: string;
  key: KeyObject;
  notBeforeMs: number;
  notAfterMs: number;
}

/** Distinct node certificates remembered; a cluster has one or two per node (renewal). */
const MAX_CACHED_CERTS = 10_000;

function oneHeader(headers: RecordHeaders | undefined, name: string): Buffer | undefined {
  const v = headers?.[name];
  // A repeated header is not ours: which one would count is exactly what a forger would exploit.
  if (v === undefined || Array.isArray(v)) return undefined;
  return typeof v === "string" ? Buffer.from(v, "utf8") : v;
}

export class RecordVerifier {
  private readonly certs = new Map<string, TrustedCert | "untrusted">();

  /** `trustedCas`: the CA certificates node certificates may chain to (more than one during a CA rotation). */
  constructor(
    private readonly trustedCas: () => readonly X509Certificate[],
    private readonly revocations: Pick<Revocations, "isRevoked">,
  ) {}

  /** The node that wrote the record, or why it cannot be told. Never throws. */
  async verify(topic: string, key: Buffer | null, value: Buffer, headers: RecordHeaders | undefined, nowMs = Date.now()): Promise<RecordVerdict> {
    const signature = oneHeader(headers, SIGNATURE_HEADER);
    const certDer = oneHeader(headers, CERT_HEADER);
    if (!signature || !certDer || !key) return { rejected: "unsigned" };
    if (signature.length !== SIGNATURE_BYTES || certDer.length > MAX_CERT_BYTES) return { rejected: "bad_signature" };
    const cert = this.trusted(certDer);
    if (!cert || nowMs < cert.notBeforeMs || nowMs > cert.notAfterMs) return { rejected: "unknown_signer" };
    if (this.revocations.isRevoked(cert.nodeId, cert.serial)) return { rejected: "removed_node" };
    // The key is compared as bytes: a node id is ASCII, and any other spelling is another claim.
    if (!key.equals(Buffer.from(cert.nodeId, "utf8"))) return { rejected: "claims_other_node" };
    const ok = await new Promise<boolean>((resolve) =>
      // Asynchronous: the check runs on libuv's thread pool, beside the consumer's other work.
      verify("sha256", recordDigest(topic, key, value), { key: cert.key, dsaEncoding: "ieee-p1363" }, signature, (err, valid) => resolve(!err && valid)),
    );
    return ok ? { nodeId: cert.nodeId } : { rejected: "bad_signature" };
  }

  /** The node certificate in `der` if a trusted CA issued it for a node identity; cached by its hash. */
  private trusted(der: Buffer): TrustedCert | undefined {
    const id = createHash("sha256").update(der).digest("base64");
    let entry = this.certs.get(id);
    if (entry === undefined) {
      entry = this.check(der) ?? "untrusted";
      if (this.certs.size >= MAX_CACHED_CERTS) this.certs.clear();
      this.certs.set(id, entry);
    }
    return entry === "untrusted" ? undefined : entry;
  }

  private check(der: Buffer): TrustedCert | undefined {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(der);
    } catch {
      return undefined;
    }
    if (cert.ca) return undefined;
    const issuer = this.trustedCas().find((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey));
    if (!issuer) return undefined;
    const nodeId = nodeIdFromSubjectAltName(cert.subjectAltName);
    const key = cert.publicKey;
    if (!nodeId || key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") return undefined;
    return { nodeId, serial: cert.serialNumber, key, notBeforeMs: Date.parse(cert.validFrom), notAfterMs: Date.parse(cert.validTo) };
  }

  /** Forgets every certificate checked so far (the trusted CAs changed). */
  reset(): void {
    this.certs.clear();
  }
}
