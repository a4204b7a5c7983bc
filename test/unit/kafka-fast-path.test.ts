// kafkajs's produce path made cheap (common/kafka-fast-path.ts) must put exactly kafkajs's own
// bytes on the wire: the CRC-32C against kafkajs's byte-at-a-time one, whole produce requests
// (random topics, partitions, records, keys, headers; values empty, around the by-reference
// threshold and large) against kafkajs's own Encoder, and a round trip through the real broker,
// which checks every record batch's CRC.
// First, as in common/kafka-wire.ts: before kafkajs loads its CRC module.
import { crc32c, fastPathActive, ROPE_MIN_BYTES, setFastEncoder } from "../../common/kafka-fast-path.js";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire, Module } from "node:module";
import { Kafka, logLevel } from "kafkajs";
import { describe, expect, it } from "vitest";
import { testServices, uniquePrefix } from "../helpers/services.js";

const require = createRequire(import.meta.url);
/** kafkajs's own CRC-32C (the inner module: the patch replaces only the one that wraps it). */
const kafkajsCrc = require("kafkajs/src/protocol/recordBatch/crc32C/crc32C.js") as (b: Buffer) => number;
interface Encoded {
  buffer: Buffer;
  size(): number;
}
type RequestArgs = { acks: number; timeout: number; topicData: unknown[] };
const produceV3 = require("kafkajs/src/protocol/requests/produce/v3/request.js") as (args: RequestArgs) => { apiKey: number; apiVersion: number; encode(): Promise<Encoded> };
const frame = require("kafkajs/src/protocol/request.js") as (args: { correlationId: number; clientId: string; request: ReturnType<typeof produceV3> }) => Promise<Encoded>;

/** A seeded generator, so a failure names a case that can be run again. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

/** The same bytes for the same (size, seed): gzip output must compare equal. */
function randomBytesSeeded(n: number, seed: number): Buffer {
  const r = rng(seed * 7919 + n);
  return Buffer.from(Array.from({ length: n }, () => Math.floor(r() * 256)));
}

const SIZES = [0, 1, 100, ROPE_MIN_BYTES - 1, ROPE_MIN_BYTES, ROPE_MIN_BYTES + 1, 32 * 1024, 300_000];

function randomTopicData(r: () => number): unknown[] {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  const bytes = (n: number) => randomBytes(n);
  return Array.from({ length: 1 + Math.floor(r() * 3) }, (_, t) => ({
    topic: `topic-${t}-${"x".repeat(Math.floor(r() * 40))}`,
    partitions: Array.from({ length: 1 + Math.floor(r() * 3) }, (_, p) => ({
      partition: p,
      firstSequence: Math.floor(r() * 1000),
      messages: Array.from({ length: 1 + Math.floor(r() * 12) }, (_, m) => ({
        key: r() < 0.2 ? null : r() < 0.5 ? `node-${m}` : bytes(pick(SIZES)),
        value: r() < 0.1 ? null : bytes(pick(SIZES)),
        timestamp: 1_700_000_000_000 + Math.floor(r() * 1000),
        headers: r() < 0.5 ? {} : { sig: bytes(pick([0, 64, ROPE_MIN_BYTES + 7])), many: [bytes(3), "text-ü"] },
      })),
    })),
  }));
}

async function encodeRequest(topicData: unknown[], fast: boolean): Promise<Buffer> {
  expect(setFastEncoder(fast)).toBe(true);
  try {
    const request = produceV3({ acks: -1, timeout: 30_000, topicData });
    const framed = await frame({ correlationId: 7, clientId: "distx-test", request });
    // As connection.js reads it: the size, then the bytes (twice).
    expect(Buffer.byteLength(framed.buffer)).toBe(framed.size());
    return Buffer.from(framed.buffer);
  } finally {
    setFastEncoder(true);
  }
}

describe("kafkajs fast path", () => {
  it("CRC-32C matches kafkajs's for every length and alignment", () => {
    const big = randomBytes(1 << 20);
    for (let len = 0; len <= 70; len++) for (const at of [0, 1, 2, 3, 5, 13]) expect(crc32c(big.subarray(at, at + len))).toBe(kafkajsCrc(big.subarray(at, at + len)));
    expect(crc32c(big)).toBe(kafkajsCrc(big));
    expect(crc32c(Buffer.from("123456789"))).toBe(0xe3069283); // the CRC-32C check value
  });

  it("is what kafkajs's produce requests use (installed before kafkajs loaded its modules)", () => {
    expect(fastPathActive()).toEqual({ crc: true, recordBatch: true, encoder: true });
  });

  it("encodes produce requests byte for byte as kafkajs's own Encoder does", async () => {
    for (let seed = 1; seed <= 40; seed++) {
      const topicData = randomTopicData(rng(seed));
      const slow = await encodeRequest(topicData, false);
      const fast = await encodeRequest(topicData, true);
      expect(fast.length, `seed ${seed}`).toBe(slow.length);
      expect(fast.equals(slow), `seed ${seed}`).toBe(true);
    }
  });

  it("record batches are kafkajs's own, byte for byte, uncompressed and gzipped", async () => {
    type Batch = (args: Record<string, unknown>) => Promise<Encoded>;
    const ours = (require("kafkajs/src/protocol/recordBatch/v0/index.js") as { RecordBatch: Batch }).RecordBatch;
    // kafkajs's own module, compiled afresh from its file (the cached one is ours).
    const file = require.resolve("kafkajs/src/protocol/recordBatch/v0/index.js");
    const own = new Module(file) as Module & { _compile(src: string, file: string): void; paths: string[] };
    own.filename = file;
    own.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(file);
    own._compile(readFileSync(file, "utf8"), file);
    const theirs = (own.exports as { RecordBatch: Batch }).RecordBatch;
    expect(theirs).not.toBe(ours);
    const Record = require("kafkajs/src/protocol/recordBatch/record/v0/index.js") as (m: Record<string, unknown>) => Encoded;
    for (let seed = 1; seed <= 12; seed++) {
      const r = rng(seed);
      for (const fast of [true, false]) {
        setFastEncoder(fast);
        try {
          for (const compression of [0, 1]) {
            const sizes = [0, 1, 2].map(() => SIZES[Math.floor(r() * SIZES.length)]!);
            const args = () => ({
              compression,
              firstTimestamp: 1_700_000_000_000,
              maxTimestamp: 1_700_000_000_009,
              producerEpoch: 3,
              firstSequence: seed,
              lastOffsetDelta: 2,
              records: [0, 1, 2].map((i) => Record({ offsetDelta: i, key: `k${i}`, value: randomBytesSeeded(sizes[i]!, seed + i), headers: {} })),
            });
            const a = Buffer.from((await theirs(args())).buffer);
            const b = Buffer.from((await ours(args())).buffer);
            expect(b.equals(a), `seed ${seed} fast ${fast} compression ${compression}`).toBe(true);
          }
        } finally {
          setFastEncoder(true);
        }
      }
    }
  });

  it("an encoder written to after its bytes were taken by reference keeps both right", async () => {
    const Encoder = require("kafkajs/src/protocol/encoder.js") as new () => Encoded & { writeBuffer(b: Buffer): unknown; writeEncoder(e: unknown): unknown; writeInt32(n: number): unknown };
    const inner = new Encoder();
    const a = randomBytes(ROPE_MIN_BYTES * 2);
    inner.writeInt32(1);
    inner.writeBuffer(a);
    const outer = new Encoder();
    outer.writeEncoder(inner);
    inner.writeInt32(2); // after outer took inner's bytes
    const before = Buffer.from(outer.buffer);
    expect(before.length).toBe(4 + a.length);
    expect(before.subarray(4).equals(a)).toBe(true);
    expect(inner.size()).toBe(8 + a.length);
    expect(inner.buffer.readInt32BE(4 + a.length)).toBe(2);
    outer.writeInt32(3); // after its buffer was joined
    expect(outer.buffer.subarray(0, before.length).equals(before)).toBe(true);
    expect(outer.buffer.readInt32BE(before.length)).toBe(3);
  });

  it("round-trips records through the real broker (which checks each batch's CRC)", async () => {
    const { kafka: broker } = testServices();
    const kafka = new Kafka({ clientId: "fast-path-test", brokers: [broker], logLevel: logLevel.NOTHING });
    const topic = `${uniquePrefix("fastpath")}.records`;
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 2, configEntries: [{ name: "max.message.bytes", value: String(16 * 1024 * 1024) }] }], waitForLeaders: true });
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    const consumer = kafka.consumer({ groupId: `${topic}-g`, maxBytesPerPartition: 16 * 1024 * 1024 });
    try {
      await producer.connect();
      const sent = SIZES.concat([4 * 1024 * 1024]).flatMap((n, i) => [0, 1].map((partition) => ({ partition, key: `k${i}-${partition}`, value: randomBytes(n), headers: { h: randomBytes(i * 1000) } })));
      await producer.send({ topic, acks: -1, messages: sent });
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      const got = new Map<string, { value: Buffer; h: Buffer }>();
      await new Promise<void>((resolve, reject) => {
        consumer
          .run({
            eachMessage: async ({ message }) => {
              got.set(message.key!.toString(), { value: message.value ?? Buffer.alloc(0), h: message.headers!.h as Buffer });
              if (got.size === sent.length) resolve();
            },
          })
          .catch(reject);
      });
      for (const m of sent) {
        const g = got.get(m.key)!;
        expect(g.value.equals(m.value), m.key).toBe(true);
        expect(Buffer.from(g.h).equals(m.headers.h), m.key).toBe(true);
      }
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    }
  });
});
