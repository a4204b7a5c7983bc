// kafkajs's produce path, made cheap for records that carry data. Profiling the 32 KiB
// Kafka + Redis bench row showed the scheduler spending about half of its CPU inside kafkajs's
// request encoding: every layer of a produce request (record, record batch, batch, partition,
// topic, request, size prefix) copies the bytes of the layer below into a fresh zero-filled
// buffer that grows by doubling, so each input byte was written ~25 times, and the record batch
// checksum (CRC-32C) ran a byte at a time (~0.3-0.4 GB/s). Two changes, both byte-identical on
// the wire (test/unit/kafka-fast-path.test.ts compares whole produce requests against kafkajs's
// own encoder, and the broker checks every batch's CRC):
//  - Encoder: bytes of ROPE_MIN_BYTES or more, and encoders of that size, are kept by reference
//    (a list of parts) instead of copied; `buffer` joins the parts once and keeps the result.
//    Growth allocates without zero-filling (nothing past `offset` is ever read).
//  - CRC-32C: slicing-by-16 tables (~3-6x faster), put in place of kafkajs's module before
//    kafkajs loads it (hence this module is imported ahead of "kafkajs" wherever that is loaded).
// kafkajs is pinned (package.json); install() checks the shapes it relies on and leaves kafkajs
// as it is when they differ, so a new kafkajs is only slower, never wrong.
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
  const T = CRC_TABLES;
  let crc = -1;
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
  return (crc ^ -1) >>> 0;
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
let crcInstalled = false;

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

/**
 * Puts the fast CRC-32C where kafkajs will load its own, if kafkajs has not loaded it yet.
 * kafkajs reads it through require() once, when its record batch module loads.
 */
function installCrc(): void {
  if (crcInstalled) return;
  let file: string;
  try {
    file = require.resolve("kafkajs/src/protocol/recordBatch/crc32C/index.js");
  } catch {
    return;
  }
  if (require.cache[file]) return; // already loaded by kafkajs: too late, left as it is
  const m = new Module(file);
  m.filename = file;
  m.loaded = true;
  m.exports = (buffer: Buffer): number => crc32c(buffer);
  require.cache[file] = m;
  crcInstalled = true;
}

/** Whether kafkajs computes record batch checksums with crc32c above (for tests and the log). */
export function fastCrcActive(): boolean {
  try {
    const fn = require("kafkajs/src/protocol/recordBatch/crc32C/index.js") as (b: Buffer) => number;
    return fn.length === 1 && require.cache[require.resolve("kafkajs/src/protocol/recordBatch/crc32C/index.js")]?.exports === fn && crcInstalled;
  } catch {
    return false;
  }
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

installCrc();
setFastEncoder(true);
