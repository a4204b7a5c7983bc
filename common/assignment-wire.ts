// SchedulerMessage{assign | assigns} written straight into one buffer of its exact size. The
// generic protobufjs path (fromObject, then a Writer that copies every input into its own chunks,
// then finish() concatenating them) cost the scheduler ~35 µs per 32 KiB task on the session and
// on Kafka; here each input is copied once, from the submitted bytes into the message.
// Field numbers and enum values come from the .proto (proto/ stays the one wire contract);
// anything this does not expect goes through protobufjs unchanged (the `fallback`).
import type * as grpc from "@grpc/grpc-js";
import type protobuf from "protobufjs";
import { contractMessage } from "./proto.js";
import { SESSION_MESSAGE_BUDGET_BYTES } from "./split-by-bytes.js";
import type { AssignmentIn, SchedulerMessageIn } from "./types.js";

interface Wire {
  /** Tag bytes (field number << 3 | wire type) of each field we write. */
  tag: Record<string, number>;
  kinds: Record<string, number>;
  assignTag: number;
  assignsTag: number;
  itemsTag: number;
  refSha: number;
  refSize: number;
  sharedName: number;
  sharedRef: number;
}

let wire: Wire | null | undefined;

/** The contract's numbers; null when a tag would not fit one byte (then everything goes through protobufjs). */
function load(): Wire | null {
  const a = contractMessage("Assignment");
  const m = contractMessage("SchedulerMessage");
  const ref = contractMessage("BlobRef");
  const shared = contractMessage("SharedInputRef");
  const batch = contractMessage("AssignmentBatch");
  const t = (type: protobuf.Type, name: string, wireType: number) => (type.fields[name]!.id << 3) | wireType;
  const kindEnum = a.fields.kind!.resolvedType as protobuf.Enum;
  const out: Wire = {
    tag: {
      jobId: t(a, "jobId", 2),
      taskIndex: t(a, "taskIndex", 0),
      attempt: t(a, "attempt", 0),
      kernelId: t(a, "kernelId", 2),
      kind: t(a, "kind", 0),
      input: t(a, "input", 2),
      timeoutMs: t(a, "timeoutMs", 0),
      memoryLimitBytes: t(a, "memoryLimitBytes", 0),
      inputRef: t(a, "inputRef", 2),
      sharedInputs: t(a, "sharedInputs", 2),
    },
    kinds: { ...kindEnum.values },
    assignTag: t(m, "assign", 2),
    assignsTag: t(m, "assigns", 2),
    itemsTag: t(batch, "items", 2),
    refSha: t(ref, "sha256", 2),
    refSize: t(ref, "sizeBytes", 0),
    sharedName: t(shared, "name", 2),
    sharedRef: t(shared, "ref", 2),
  };
  const tags = [...Object.values(out.tag), out.assignTag, out.assignsTag, out.itemsTag, out.refSha, out.refSize, out.sharedName, out.sharedRef];
  // A field added to these messages that this writer does not know would be dropped: protobufjs then.
  const known = (type: protobuf.Type, names: string[]) => type.fieldsArray.every((f) => names.includes(f.name));
  const complete = known(a, Object.keys(out.tag)) && known(ref, ["sha256", "sizeBytes"]) && known(shared, ["name", "ref"]) && known(batch, ["items"]);
  return complete && tags.every((tag) => tag < 0x80) ? out : null;
}

const varintLen = (v: number): number => (v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : v < 2 ** 35 ? 5 : v < 2 ** 42 ? 6 : v < 2 ** 49 ? 7 : 8);

function writeVarint(buf: Buffer, pos: number, v: number): number {
  // Safe integers only (checked by the caller): above 2^31 bit operations would truncate.
  while (v >= 0x80) {
    buf[pos++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  buf[pos++] = v;
  return pos;
}

/** A uint64 given as protobufjs takes it (number or decimal string), if it is a safe integer; else undefined. */
function uint64(v: unknown): number | undefined {
  if (v === undefined || v === null) return 0;
  const n = typeof v === "number" ? v : typeof v === "string" && /^\d{1,15}$/.test(v) ? Number(v) : NaN;
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

const isStr = (s: unknown): boolean => s === undefined || s === null || typeof s === "string";
const strLen = (s: string | undefined): number => (s ? Buffer.byteLength(s) : 0);
const fieldLen = (bodyLen: number): number => 1 + varintLen(bodyLen) + bodyLen;

/** Sizes of one assignment's parts, worked out once and used again when writing. */
interface Sized {
  a: AssignmentIn;
  jobId: number;
  kernelId: number;
  kind: number;
  memory: number;
  ref: number;
  shared: number[];
  body: number;
}

/** The assignment's sizes, or undefined when it holds something only protobufjs handles (a string input, a huge uint64). */
function size(w: Wire, a: AssignmentIn): Sized | undefined {
  const input = a.input;
  if (input !== undefined && input !== null && !(input instanceof Uint8Array)) return undefined;
  const memory = uint64(a.memoryLimitBytes);
  if (memory === undefined) return undefined;
  if (!isStr(a.jobId) || !isStr(a.kernelId) || (a.inputRef && !isStr(a.inputRef.sha256))) return undefined;
  if (typeof a.kind === "number" && !(Number.isInteger(a.kind) && a.kind >= 0 && a.kind < 2 ** 31)) return undefined;
  // As protobufjs's fromObject: a name it does not know leaves the field unset.
  const kind = typeof a.kind === "number" ? a.kind : a.kind !== undefined && Object.hasOwn(w.kinds, a.kind) ? w.kinds[a.kind]! : 0;
  const jobId = strLen(a.jobId);
  const kernelId = strLen(a.kernelId);
  let body = 0;
  if (jobId) body += fieldLen(jobId);
  const taskIndex = (a.taskIndex ?? 0) >>> 0;
  const attempt = (a.attempt ?? 0) >>> 0;
  const timeout = (a.timeoutMs ?? 0) >>> 0;
  if (taskIndex) body += 1 + varintLen(taskIndex);
  if (attempt) body += 1 + varintLen(attempt);
  if (kernelId) body += fieldLen(kernelId);
  if (kind) body += 1 + varintLen(kind >>> 0);
  if (input && input.byteLength) body += fieldLen(input.byteLength);
  if (timeout) body += 1 + varintLen(timeout);
  if (memory) body += 1 + varintLen(memory);
  let ref = 0;
  if (a.inputRef) {
    const refSize = uint64(a.inputRef.sizeBytes);
    if (refSize === undefined) return undefined;
    const sha = strLen(a.inputRef.sha256);
    ref = (sha ? fieldLen(sha) : 0) + (refSize ? 1 + varintLen(refSize) : 0);
    body += fieldLen(ref);
  }
  const shared: number[] = [];
  for (const s of a.sharedInputs ?? []) {
    if (!isStr(s.name) || (s.ref && !isStr(s.ref.sha256))) return undefined;
    let n = strLen(s.name) ? fieldLen(strLen(s.name)) : 0;
    if (s.ref) {
      const refSize = uint64(s.ref.sizeBytes);
      if (refSize === undefined) return undefined;
      const sha = strLen(s.ref.sha256);
      n += fieldLen((sha ? fieldLen(sha) : 0) + (refSize ? 1 + varintLen(refSize) : 0));
    }
    shared.push(n);
    body += fieldLen(n);
  }
  return { a, jobId, kernelId, kind: kind >>> 0, memory, ref, shared, body };
}

function writeString(buf: Buffer, pos: number, tag: number, s: string | undefined, len: number): number {
  if (!len) return pos;
  buf[pos++] = tag;
  pos = writeVarint(buf, pos, len);
  return pos + buf.write(s!, pos, len, "utf8");
}

function writeUint(buf: Buffer, pos: number, tag: number, v: number): number {
  if (!v) return pos;
  buf[pos++] = tag;
  return writeVarint(buf, pos, v);
}

function writeRef(w: Wire, buf: Buffer, pos: number, ref: { sha256?: string; sizeBytes?: unknown }): number {
  pos = writeString(buf, pos, w.refSha, ref.sha256, strLen(ref.sha256));
  return writeUint(buf, pos, w.refSize, uint64(ref.sizeBytes)!);
}

function writeAssignment(w: Wire, buf: Buffer, pos: number, s: Sized): number {
  const { a } = s;
  const t = w.tag;
  pos = writeString(buf, pos, t.jobId!, a.jobId, s.jobId);
  pos = writeUint(buf, pos, t.taskIndex!, (a.taskIndex ?? 0) >>> 0);
  pos = writeUint(buf, pos, t.attempt!, (a.attempt ?? 0) >>> 0);
  pos = writeString(buf, pos, t.kernelId!, a.kernelId, s.kernelId);
  pos = writeUint(buf, pos, t.kind!, s.kind);
  const input = a.input as Uint8Array | undefined | null;
  if (input && input.byteLength) {
    buf[pos++] = t.input!;
    pos = writeVarint(buf, pos, input.byteLength);
    buf.set(input, pos);
    pos += input.byteLength;
  }
  pos = writeUint(buf, pos, t.timeoutMs!, (a.timeoutMs ?? 0) >>> 0);
  pos = writeUint(buf, pos, t.memoryLimitBytes!, s.memory);
  if (a.inputRef) {
    buf[pos++] = t.inputRef!;
    pos = writeVarint(buf, pos, s.ref);
    pos = writeRef(w, buf, pos, a.inputRef);
  }
  const sharedInputs = a.sharedInputs ?? [];
  for (let i = 0; i < sharedInputs.length; i++) {
    const si = sharedInputs[i]!;
    buf[pos++] = t.sharedInputs!;
    pos = writeVarint(buf, pos, s.shared[i]!);
    pos = writeString(buf, pos, w.sharedName, si.name, strLen(si.name));
    if (si.ref) {
      buf[pos++] = w.sharedRef;
      const sha = strLen(si.ref.sha256);
      const refSize = uint64(si.ref.sizeBytes)!;
      pos = writeVarint(buf, pos, (sha ? fieldLen(sha) : 0) + (refSize ? 1 + varintLen(refSize) : 0));
      pos = writeRef(w, buf, pos, si.ref);
    }
  }
  return pos;
}

/**
 * The session's serializer returns bytes that grpc-js copies at once into its own frame
 * (ServerInterceptingCall.serializeMessage) and never keeps: so they are written into one reused
 * buffer, not a fresh one per message (a fresh 4 MiB buffer is page faults and GC for every
 * batch: ~2.5 against ~5-15 µs per 32 KiB task). test/unit/assignment-wire.test.ts checks that
 * grpc-js still copies, over a real session.
 */
const SCRATCH_MAX_BYTES = 2 * SESSION_MESSAGE_BUDGET_BYTES;
let scratch: Buffer | undefined;
function scratchOf(bytes: number): Buffer {
  if (!scratch || scratch.byteLength < bytes) scratch = Buffer.allocUnsafe(Math.min(SCRATCH_MAX_BYTES, Math.max(bytes, 2 * (scratch?.byteLength ?? 64 * 1024))));
  return scratch.subarray(0, bytes);
}

/**
 * The wire bytes of a SchedulerMessage: assignments written directly, anything else (a cancel,
 * or an assignment this writer does not take) by `fallback` (protobufjs, the session's own serializer).
 * `into: "scratch"`: in the reused buffer, valid until the next call (only for grpc-js's serializer).
 */
export function encodeSchedulerMessage(msg: SchedulerMessageIn, fallback: (msg: SchedulerMessageIn) => Buffer, into: "own" | "scratch" = "own"): Buffer {
  if (wire === undefined) wire = load();
  const w = wire;
  const items = msg.assign ? [msg.assign] : msg.assigns?.items;
  if (!w || !items || msg.cancel || (msg.assign && msg.assigns)) return fallback(msg);
  const sized: Sized[] = [];
  for (const a of items) {
    const s = size(w, a);
    if (!s) return fallback(msg);
    sized.push(s);
  }
  // assign: the one Assignment; assigns: an AssignmentBatch of Assignments (field `items`).
  const single = msg.assign !== undefined && msg.assign !== null;
  const batch = single ? sized[0]!.body : sized.reduce((n, s) => n + fieldLen(s.body), 0);
  const total = fieldLen(batch);
  const buf = into === "scratch" && total <= SCRATCH_MAX_BYTES ? scratchOf(total) : Buffer.allocUnsafe(total);
  buf[0] = single ? w.assignTag : w.assignsTag;
  let pos = writeVarint(buf, 1, batch);
  for (const s of sized) {
    if (!single) {
      buf[pos++] = w.itemsTag;
      pos = writeVarint(buf, pos, s.body);
    }
    pos = writeAssignment(w, buf, pos, s);
  }
  if (pos !== total) throw new Error(`assignment encoding wrote ${pos} of ${total} bytes`);
  return buf;
}

/** AgentService with the Session's scheduler → agent messages written by encodeSchedulerMessage. */
export function withDirectAssignments<S extends grpc.ServiceDefinition>(service: S): S {
  const session = service["Session"] as grpc.MethodDefinition<unknown, SchedulerMessageIn> | undefined;
  if (!session) return service;
  const protobufjs = session.responseSerialize;
  return { ...service, Session: { ...session, responseSerialize: (msg: SchedulerMessageIn) => encodeSchedulerMessage(msg, protobufjs, "scratch") } };
}
