// kafkajs's produce path, made cheap for records that carry data. On the 32 KiB Kafka + Redis
// bench row the scheduler spent about half of its CPU in kafkajs's request encoding: each layer
// of a produce request (record, batch body, batch, partition, topic, request, size prefix) copied
// the layer below into a fresh zero-filled buffer grown by doubling (each input byte written ~25
// times), and the batch CRC-32C ran a byte at a time (~0.3-0.4 GB/s). Three changes, byte-identical
// on the wire (test/unit/kafka-fast-path.test.ts checks against kafkajs's own code; the broker
// checks every batch's CRC):
//  - Encoder: bytes and encoders of ROPE_MIN_BYTES or more are kept by reference (a list of
//    parts); `buffer` joins them once. Growth skips zero-filling (nothing past `offset` is read).
//  - CRC-32C by slicing-by-16 tables (3-6x faster), and RecordBatch taking it over the body's
//    parts in place: both put where kafkajs will require() them, before kafkajs loads them (so
//    this module is imported ahead of "kafkajs" wherever that is loaded).
// kafkajs is pinned (package.json); a layout or shape that differs leaves kafkajs as it is
// (slower, never wrong), and fastPathActive() says what is in place.
import { createRequire, Module } from "node:module";

const require = createRequire(import.meta.url);

/** Below this, a copy is cheaper than another part to join later. */
export const ROPE_MIN_BYTES = 4096;

// ---- CRC-32C (Castagnoli), slicing by 16 ----

const CRC_TABLES = (() => {
  const t = new Int32Array(16 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 16; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
})();

/** CRC-32C of `buf`, unsigned: what kafkajs's recordBatch/crc32C module returns. */
export function crc32c(buf: Uint8Array): number {
  return (crc32cUpdate(-1, buf) ^ -1) >>> 0;
}

/** The running (inverted) CRC state after `buf`; start from -1, finish with `(state ^ -1) >>> 0`. */
function crc32cUpdate(state: number, buf: Uint8Array): number {
  const T = CRC_TABLES;
  let crc = state;
  let i = 0;
  const n = buf.length;
  const end = n - (n & 15);
  for (; i < end; i += 16) {
    const a = crc ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24));
    crc =
      T[3840 + (a & 0xff)]! ^ T[3584 + ((a >>> 8) & 0xff)]! ^ T[3328 + ((a >>> 16) & 0xff)]! ^ T[3072 + (a >>> 24)]! ^
      T[2816 + buf[i + 4]!]! ^ T[2560 + buf[i + 5]!]! ^ T[2304 + buf[i + 6]!]! ^ T[2048 + buf[i + 7]!]! ^
      T[1792 + buf[i + 8]!]! ^ T[1536 + buf[i + 9]!]! ^ T[1280 + buf[i + 10]!]! ^ T[1024 + buf[i + 11]!]! ^
      T[768 + buf[i + 12]!]! ^ T[512 + buf[i + 13]!]! ^ T[256 + buf[i + 14]!]! ^ T[buf[i + 15]!]!;
  }
  for (; i < n; i++) crc = T[(crc ^ buf[i]!) & 0xff]! ^ (crc >>> 8);
  return crc;
}

/** CRC-32C of what an Encoder holds, over its parts in place (no join). */
function crc32cOfEncoder(e: KafkaEncoder): number {
  let state = -1;
  for (const p of e.ropeParts ?? []) state = crc32cUpdate(state, p);
  state = crc32cUpdate(state, e.buf.subarray(0, e.offset));
  return (state ^ -1) >>> 0;
}

// ---- kafkajs's Encoder, by reference ----

/** The parts of kafkajs's Encoder (src/protocol/encoder.js, 2.2.x) this patch reads and writes. */
interface KafkaEncoder {
  buf: Buffer;
  offset: number;
  /** Added here: bytes before `buf[0, offset)`, by reference, in order. */
  ropeParts?: Buffer[];
  ropeBytes?: number;
  writeBufferInternal(buffer: Buffer): void;
  ensureAvailable(length: number): void;
  writeEncoder(value: KafkaEncoder): KafkaEncoder;
  writeEncoderArray(value: KafkaEncoder[]): KafkaEncoder;
  size(): number;
  readonly buffer: Buffer;
}
interface EncoderClass {
  prototype: KafkaEncoder;
  nextPowerOfTwo(value: number): number;
}

type Methods = Pick<KafkaEncoder, "writeBufferInternal" | "ensureAvailable" | "writeEncoder" | "writeEncoderArray" | "size">;
const METHOD_NAMES = ["writeBufferInternal", "ensureAvailable", "writeEncoder", "writeEncoderArray", "size"] as const;

/** What the tail holds until something is written (the old `buf` may be referenced by a part). */
const TAIL_BYTES = 512;

/** Moves the written tail into the parts (by reference) and starts a fresh tail. */
function flushTail(e: KafkaEncoder): void {
  if (!e.ropeParts) {
    e.ropeParts = [];
    e.ropeBytes = 0;
  }
  if (e.offset > 0) {
    e.ropeParts.push(e.buf.subarray(0, e.offset));
    e.ropeBytes! += e.offset;
    e.buf = Buffer.allocUnsafe(TAIL_BYTES);
    e.offset = 0;
  }
}

function isEncoder(v: unknown): v is KafkaEncoder {
  return v != null && Buffer.isBuffer((v as KafkaEncoder).buf);
}

function fastMethods(Encoder: EncoderClass): Methods {
  return {
    writeBufferInternal(this: KafkaEncoder, buffer: Buffer) {
      const n = buffer.length;
      if (n >= ROPE_MIN_BYTES) {
        flushTail(this);
        this.ropeParts!.push(buffer);
        this.ropeBytes! += n;
        return;
      }
      this.ensureAvailable(n);
      buffer.copy(this.buf, this.offset, 0);
      this.offset += n;
    },
    ensureAvailable(this: KafkaEncoder, length: number) {
      if (this.offset + length > this.buf.length) {
        // Unlike kafkajs, not zero-filled: only buf[0, offset) is ever read.
        const grown = Buffer.allocUnsafe(Encoder.nextPowerOfTwo(this.offset + length));
        this.buf.copy(grown, 0, 0, this.offset);
        this.buf = grown;
      }
    },
    writeEncoder(this: KafkaEncoder, value: KafkaEncoder) {
      if (!isEncoder(value)) throw new Error("value should be an instance of Encoder");
      if (value.size() < ROPE_MIN_BYTES) {
        // Small: copied, as kafkajs does (value.buffer has no parts to join below this size).
        const b = value.buffer;
        this.ensureAvailable(b.length);
        b.copy(this.buf, this.offset, 0);
        this.offset += b.length;
        return this;
      }
      // Large: its parts and its tail, by reference. An Encoder is append-only, so bytes it has
      // written never change; later writes to it land past the tail taken here.
      flushTail(this);
      for (const p of value.ropeParts ?? []) this.ropeParts!.push(p);
      this.ropeBytes! += value.ropeBytes ?? 0;
      if (value.offset > 0) {
        this.ropeParts!.push(value.buf.subarray(0, value.offset));
        this.ropeBytes! += value.offset;
      }
      return this;
    },
    writeEncoderArray(this: KafkaEncoder, value: KafkaEncoder[]) {
      if (!Array.isArray(value) || value.some((v) => !isEncoder(v))) throw new Error("all values should be an instance of Encoder[]");
      for (const v of value) this.writeEncoder(v);
      return this;
    },
    size(this: KafkaEncoder) {
      return (this.ropeBytes ?? 0) + this.offset;
    },
  };
}

/** `buffer`: the parts joined once (the result becomes the encoder's only buffer). */
function fastBufferGetter(this: KafkaEncoder): Buffer {
  if (this.ropeParts && this.ropeParts.length > 0) {
    const total = this.ropeBytes! + this.offset;
    const parts = this.offset > 0 ? [...this.ropeParts, this.buf.subarray(0, this.offset)] : this.ropeParts;
    this.buf = Buffer.concat(parts, total);
    this.offset = total;
    this.ropeParts = undefined;
    this.ropeBytes = 0;
  }
  return this.buf.subarray(0, this.offset);
}

interface Saved {
  methods: Methods;
  buffer: PropertyDescriptor;
}
let saved: Saved | undefined;

function encoderClass(): EncoderClass | undefined {
  try {
    const Encoder = require("kafkajs/src/protocol/encoder.js") as EncoderClass;
    const proto = Encoder.prototype;
    const shapeOk =
      typeof Encoder.nextPowerOfTwo === "function" &&
      METHOD_NAMES.every((m) => typeof proto[m] === "function") &&
      typeof Object.getOwnPropertyDescriptor(proto, "buffer")?.get === "function";
    return shapeOk ? Encoder : undefined;
  } catch {
    return undefined;
  }
}

const CRC_MODULE = "kafkajs/src/protocol/recordBatch/crc32C/index.js";
const RECORD_BATCH_MODULE = "kafkajs/src/protocol/recordBatch/v0/index.js";
const injected = new Map<string, unknown>();

/**
 * Puts `exports` where kafkajs will load `spec` from, if kafkajs has not loaded it yet: kafkajs
 * reads these modules through require() once, when the modules that use them load.
 */
function inject(spec: string, make: () => unknown): void {
  if (injected.has(spec)) return;
  try {
    const file = require.resolve(spec);
    if (require.cache[file]) return; // already loaded by kafkajs: too late, left as it is
    const m = new Module(file);
    m.filename = file;
    m.loaded = true;
    m.exports = make();
    require.cache[file] = m;
    injected.set(spec, m.exports);
  } catch {
    // Not kafkajs 2.x's layout: left as it is.
  }
}

/** Which parts are in place: kafkajs's own record batches and CRC are used where one is not. */
export function fastPathActive(): { crc: boolean; recordBatch: boolean; encoder: boolean } {
  const is = (spec: string) => {
    try {
      return injected.has(spec) && require(spec) === injected.get(spec);
    } catch {
      return false;
    }
  };
  return { crc: is(CRC_MODULE), recordBatch: is(RECORD_BATCH_MODULE), encoder: saved !== undefined };
}

interface KafkaLong {
  fromInt(n: number): unknown;
  fromValue(v: unknown): unknown;
}
interface Compression {
  Types: { None: number };
  COMPRESSION_CODEC_MASK: number;
  lookupCodec(type: number): { compress(e: KafkaEncoder): Promise<Buffer> };
}
/** The writers RecordBatch chains (each returns the encoder). */
interface ChainEncoder extends KafkaEncoder {
  writeInt8(n: number): ChainEncoder;
  writeInt16(n: number): ChainEncoder;
  writeInt32(n: number): ChainEncoder;
  writeUInt32(n: number): ChainEncoder;
  writeInt64(v: unknown): ChainEncoder;
  writeArray(values: unknown[], type?: string): ChainEncoder;
  writeBuffer(b: Buffer): ChainEncoder;
  writeEncoder(e: KafkaEncoder): ChainEncoder;
  writeEncoderArray(e: KafkaEncoder[]): ChainEncoder;
}
type EncoderCtor = new () => ChainEncoder;
interface RecordBatchArgs {
  compression?: number;
  firstOffset?: unknown;
  firstTimestamp?: number;
  maxTimestamp?: number;
  partitionLeaderEpoch?: number;
  lastOffsetDelta?: number;
  transactional?: boolean;
  producerId?: unknown;
  producerEpoch?: number;
  firstSequence?: number;
  records?: KafkaEncoder[];
}

/**
 * kafkajs's RecordBatch (recordBatch/v0/index.js, 2.2.4), line for line, but for two joins it no
 * longer makes: the CRC is taken over the body's parts in place (kafkajs joined the body to
 * checksum it), and the batch goes into its length-prefixed bytes as an encoder (kafkajs joined
 * it into one buffer first). The bytes are the same (test/unit/kafka-fast-path.test.ts).
 */
function recordBatchModule(): { RecordBatch: (args: RecordBatchArgs) => Promise<KafkaEncoder>; MAGIC_BYTE: number } {
  const Long = require("kafkajs/src/utils/long.js") as KafkaLong;
  const Encoder = require("kafkajs/src/protocol/encoder.js") as EncoderCtor;
  const { Types, COMPRESSION_CODEC_MASK, lookupCodec } = require("kafkajs/src/protocol/message/compression/index.js") as Compression;
  const MAGIC_BYTE = 2;
  const TIMESTAMP_MASK = 0;
  const TRANSACTIONAL_MASK = 16;
  const compressRecords = async (compression: number, records: KafkaEncoder[]) => {
    const codec = lookupCodec(compression);
    const recordsEncoder = new Encoder();
    recordsEncoder.writeEncoderArray(records);
    return codec.compress(recordsEncoder);
  };
  const RecordBatch = async ({
    compression = Types.None,
    firstOffset = Long.fromInt(0),
    firstTimestamp = Date.now(),
    maxTimestamp = Date.now(),
    partitionLeaderEpoch = 0,
    lastOffsetDelta = 0,
    transactional = false,
    producerId = Long.fromValue(-1),
    producerEpoch = 0,
    firstSequence = 0,
    records = [],
  }: RecordBatchArgs): Promise<KafkaEncoder> => {
    const attributes = (compression & COMPRESSION_CODEC_MASK) | TIMESTAMP_MASK | (transactional ? TRANSACTIONAL_MASK : 0);
    const batchBody = new Encoder()
      .writeInt16(attributes)
      .writeInt32(lastOffsetDelta)
      .writeInt64(firstTimestamp)
      .writeInt64(maxTimestamp)
      .writeInt64(producerId)
      .writeInt16(producerEpoch)
      .writeInt32(firstSequence);
    if (compression === Types.None) {
      if (records.every((v) => typeof v === typeof records[0])) batchBody.writeArray(records, typeof records[0]);
      else batchBody.writeArray(records);
    } else {
      const compressed = await compressRecords(compression, records);
      batchBody.writeInt32(records.length).writeBuffer(compressed);
    }
    const batch = new Encoder().writeInt32(partitionLeaderEpoch).writeInt8(MAGIC_BYTE).writeUInt32(crc32cOfEncoder(batchBody)).writeEncoder(batchBody);
    // writeBytes(batch.buffer) is an int32 length and the bytes.
    return new Encoder().writeInt64(firstOffset).writeInt32(batch.size()).writeEncoder(batch);
  };
  return { RecordBatch, MAGIC_BYTE };
}

/** Encodes by reference (see above); `false` puts kafkajs's own methods back (tests compare the two). */
export function setFastEncoder(on: boolean): boolean {
  const Encoder = encoderClass();
  if (!Encoder) return false;
  const proto = Encoder.prototype;
  if (on && !saved) {
    saved = {
      methods: Object.fromEntries(METHOD_NAMES.map((m) => [m, proto[m]])) as unknown as Methods,
      buffer: Object.getOwnPropertyDescriptor(proto, "buffer")!,
    };
    Object.assign(proto, fastMethods(Encoder));
    Object.defineProperty(proto, "buffer", { get: fastBufferGetter, configurable: true, enumerable: saved.buffer.enumerable ?? false });
  } else if (!on && saved) {
    Object.assign(proto, saved.methods);
    Object.defineProperty(proto, "buffer", saved.buffer);
    saved = undefined;
  }
  return true;
}

inject(CRC_MODULE, () => (buffer: Buffer): number => crc32c(buffer));
inject(RECORD_BATCH_MODULE, recordBatchModule);
setFastEncoder(true);
