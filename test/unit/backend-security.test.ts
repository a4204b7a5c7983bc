// The Kafka/Redis security settings turn into client options, or into an error that names the
// setting and never shows a secret.
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { kafkaSecurity, redactUrl, redisTls } from "../../common/backend-security.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "distx-sec-"));
const pwFile = path.join(dir, "pw");
writeFileSync(pwFile, "s3cret\n");
const caFile = path.join(dir, "ca.pem");
writeFileSync(caFile, "-----BEGIN CERTIFICATE-----\n");

describe("kafkaSecurity", () => {
  it("is PLAINTEXT with no settings, TLS with a CA, SASL with a user and a password (file wins its newline)", () => {
    expect(kafkaSecurity({ kafkaSaslMechanism: "none", kafkaTls: false })).toEqual({});
    const s = kafkaSecurity({ kafkaSaslMechanism: "scram-sha-512", kafkaUsername: "u", kafkaPasswordFile: pwFile, kafkaTls: false, kafkaCaFile: caFile });
    expect(s.sasl).toEqual({ mechanism: "scram-sha-512", username: "u", password: "s3cret" });
    expect(s.ssl).toMatchObject({ rejectUnauthorized: true });
    expect(kafkaSecurity({ kafkaSaslMechanism: "none", kafkaTls: true }).ssl).toEqual({ rejectUnauthorized: true });
  });
  it("names the missing or unreadable setting, never the password", () => {
    expect(() => kafkaSecurity({ kafkaSaslMechanism: "plain", kafkaTls: true, kafkaPassword: "s3cret" })).toThrow(/^kafkaUsername: required/);
    expect(() => kafkaSecurity({ kafkaSaslMechanism: "plain", kafkaTls: true, kafkaUsername: "u" })).toThrow(/kafkaPassword or kafkaPasswordFile: required/);
    expect(() => kafkaSecurity({ kafkaSaslMechanism: "plain", kafkaTls: true, kafkaUsername: "u", kafkaPassword: "s3cret", kafkaPasswordFile: pwFile })).toThrow(/set one, not both/);
    expect(() => kafkaSecurity({ kafkaSaslMechanism: "plain", kafkaTls: true, kafkaUsername: "u", kafkaPasswordFile: path.join(dir, "none") })).toThrow(/kafkaPasswordFile: cannot read .*ENOENT/);
    try {
      kafkaSecurity({ kafkaSaslMechanism: "plain", kafkaTls: true, kafkaPassword: "s3cret" });
    } catch (err) {
      expect((err as Error).message).not.toContain("s3cret");
    }
  });
});

describe("Redis URL and TLS", () => {
  it("hides the password and only it", () => {
    expect(redactUrl("rediss://distx:s3cret@h:6380/2")).toBe("rediss://distx:***@h:6380/2");
    expect(redactUrl("redis://127.0.0.1:6379")).toBe("redis://127.0.0.1:6379");
    expect(redactUrl("rediss://u:p@[bad")).not.toContain(":p@");
  });
  it("turns TLS on for rediss:// or a CA file", () => {
    expect(redisTls("redis://h:1")).toBeUndefined();
    expect(redisTls("rediss://h:1")).toEqual({ rejectUnauthorized: true });
    expect(redisTls("redis://h:1", caFile)?.ca).toHaveLength(1);
  });
});
