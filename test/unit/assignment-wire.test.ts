// Assignments written straight into their message (common/assignment-wire.ts) must decode, at the
// agent, to exactly what protobufjs's own encoding of the same message decodes to.
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import type { MethodDefinition, ServiceDefinition } from "@grpc/proto-loader";
import { encodeSchedulerMessage, withDirectAssignments } from "../../common/assignment-wire.js";
import { loadContract, v1 } from "../../common/proto.js";
import type { AgentMessage, AgentMessageIn, AssignmentIn, SchedulerMessage, SchedulerMessageIn } from "../../common/types.js";

const session = (loadContract().definition["distributex.v1.AgentService"] as ServiceDefinition)["Session"] as MethodDefinition<AgentMessageIn, SchedulerMessageIn, AgentMessage, SchedulerMessage>;
const reference = (m: SchedulerMessageIn) => session.responseSerialize(m);
const decode = (b: Buffer) => session.responseDeserialize(b);
let usedFallback = 0;
const direct = (m: SchedulerMessageIn) =>
  encodeSchedulerMessage(m, (x) => {
    usedFallback++;
    return reference(x);
  });

const sha = (c: string) => c.repeat(64);
const variants: AssignmentIn[] = [
  { jobId: "job-1", taskIndex: 0, attempt: 1, kernelId: sha("a"), kind: "KERNEL_KIND_WASM", input: Buffer.from([1, 2, 3]), timeoutMs: 30_000, memoryLimitBytes: "0" },
  { jobId: "job-2", taskIndex: 300_000, attempt: 5, kernelId: sha("b"), kind: "KERNEL_KIND_GPU", input: Buffer.alloc(0), timeoutMs: 2 ** 31, memoryLimitBytes: String(2 ** 40 + 7) },
  { jobId: "jöb-ünïcode-✓", taskIndex: 127, attempt: 128, kernelId: sha("c"), kind: "KERNEL_KIND_WASM", input: Buffer.alloc(200_000, 7), timeoutMs: 1, memoryLimitBytes: 16_384 },
  {
    jobId: "job-4",
    taskIndex: 16_383,
    attempt: 16_384,
    kernelId: sha("d"),
    kind: "KERNEL_KIND_WASM",
    inputRef: { sha256: sha("e"), sizeBytes: "1048576" },
    sharedInputs: [
      { name: "b", ref: { sha256: sha("f"), sizeBytes: "16777216" } },
      { name: "", ref: { sha256: sha("0"), sizeBytes: "0" } },
      { name: "lut", ref: null },
    ],
    timeoutMs: 60_000,
    memoryLimitBytes: "268435456",
  },
  { jobId: "", taskIndex: 0, attempt: 0, kernelId: "", kind: "KERNEL_KIND_UNSPECIFIED" },
  { jobId: "job-6", kind: 2, input: new Uint8Array([9, 8, 7]).subarray(1), memoryLimitBytes: 999_999_999_999_999 },
  { jobId: "job-7", kind: "NOT_A_KIND" as never },
];

describe("assignments written straight into their message", () => {
  it("decode to what protobufjs's encoding decodes to, one at a time and in batches", () => {
    usedFallback = 0;
    for (const a of variants) expect(decode(direct({ assign: a }))).toEqual(decode(reference({ assign: a })));
    expect(decode(direct({ assigns: { items: variants } }))).toEqual(decode(reference({ assigns: { items: variants } })));
    expect(decode(direct({ assigns: { items: [] } }))).toEqual(decode(reference({ assigns: { items: [] } })));
    // 0: the direct writer took them all (a field added to these messages makes it step aside: teach it the field).
    expect(usedFallback).toBe(0);
    // The bytes themselves are the input's, not a copy that was reused or truncated.
    const big = variants[2]!;
    const got = decode(direct({ assign: big })).assign!;
    expect(got.input.equals(big.input as Buffer)).toBe(true);
  });

  it("leaves to protobufjs what it does not take: a cancel, a string input, a uint64 past 2^53", () => {
    const odd: SchedulerMessageIn[] = [
      { cancel: { jobId: "job-1", taskIndexes: [1, 2] } },
      { assign: { jobId: "job-1", input: Buffer.from("hi").toString("base64") } },
      { assign: { jobId: "job-1", memoryLimitBytes: "18446744073709551615" } },
      { assigns: { items: [variants[0]!, { jobId: "j", inputRef: { sha256: sha("a"), sizeBytes: "18446744073709551615" } }] } },
    ];
    for (const m of odd) {
      usedFallback = 0;
      expect(decode(direct(m))).toEqual(decode(reference(m)));
      expect(usedFallback).toBe(1);
    }
  });

  it("is the session's serializer for scheduler → agent messages", () => {
    const service = withDirectAssignments(v1().AgentService.service);
    const m: SchedulerMessageIn = { assigns: { items: variants } };
    expect(decode(service.Session!.responseSerialize(m) as Buffer)).toEqual(decode(reference(m)));
    expect(service.Session!.responseSerialize).not.toBe(v1().AgentService.service.Session!.responseSerialize);
  });

  it("over a real session, every message arrives intact although each is written into the one reused buffer", async () => {
    // grpc-js must copy what the serializer returns before the next message is serialized.
    const server = new grpc.Server();
    const batches = 40;
    const payload = (b: number, i: number) => Buffer.alloc(32 * 1024 + b, (b * 7 + i) & 0xff);
    server.addService(withDirectAssignments(v1().AgentService.service), {
      Session: (call: grpc.ServerDuplexStream<AgentMessage, SchedulerMessageIn>) => {
        // All written in one turn: nothing is sent before the last one is serialized.
        for (let b = 0; b < batches; b++) {
          call.write({ assigns: { items: Array.from({ length: 20 }, (_, i) => ({ jobId: `job-${b}`, taskIndex: i, input: payload(b, i) })) } });
        }
        call.end();
      },
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    const client = new (v1().AgentService)(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      const got: SchedulerMessage[] = [];
      await new Promise<void>((resolve, reject) => {
        const call = client.Session();
        call.on("data", (m: SchedulerMessage) => got.push(m));
        call.on("end", resolve);
        call.on("error", reject);
        call.end();
      });
      expect(got.length).toBe(batches);
      got.forEach((m, b) => {
        expect(m.assigns!.items.length).toBe(20);
        m.assigns!.items.forEach((a, i) => {
          expect(a.jobId).toBe(`job-${b}`);
          expect(a.input.equals(payload(b, i))).toBe(true);
        });
      });
    } finally {
      client.close();
      server.forceShutdown();
    }
  });
});
