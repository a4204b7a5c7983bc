// putJob's command is built once (scheduler/backends/redis-prepared.ts): its bytes must be the
// ones ioredis writes for the same arguments with the inputs framed by encodeBuffers, and the
// submissions a scheduler wrote itself are passed over only under the conditions own-submissions.ts states.
import { Command } from "ioredis";
import { describe, expect, it } from "vitest";
import { encodeBuffers, encodeFramed } from "../../scheduler/backends/codec.js";
import { OwnSubmissions } from "../../scheduler/backends/own-submissions.js";
import { respCommand } from "../../scheduler/backends/redis-prepared.js";

const ioredisBytes = (name: string, args: (string | Buffer)[]): Buffer => {
  const w = new Command(name, args).toWritable(undefined as never);
  return typeof w === "string" ? Buffer.from(w, "utf8") : w;
};

describe("prepared Redis commands", () => {
  it("are byte for byte what ioredis writes, framed inputs of every size included", () => {
    const big = Buffer.alloc(70_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    const cases: Uint8Array[][] = [[], [Buffer.alloc(0)], [Buffer.from("x"), Buffer.alloc(0), Buffer.from([0, 13, 10, 255])], [big, big.subarray(5, 4101), new Uint8Array(big.buffer, 7, 9)]];
    for (const inputs of cases) {
      const args = ["s".repeat(40), "4", "p:job:j:inputs", "p:job:j:refs", "p:job:j:meta", "p:jobs:unfinished"];
      const rest = ["", '{"id":"j","name":"é ✓"}', "1700000000000", "j"];
      const ours = respCommand(["evalsha", ...args, { framed: inputs }, ...rest]);
      expect(ours.equals(ioredisBytes("evalsha", [...args, encodeBuffers(inputs), ...rest]))).toBe(true);
    }
    // A result: a JSON header and buffers, as encodeFramed frames them.
    const header = { taskIndex: 3, state: "TASK_STATE_SUCCEEDED", nodeId: "n-é", logs: ["ok ✓"] };
    for (const output of [Buffer.alloc(0), big]) {
      const ours = respCommand(["evalsha", "s".repeat(40), "1", "p:job:j:results", "3", { json: JSON.stringify(header), framed: [output] }, "4", { json: "{}", framed: [] }]);
      expect(ours.equals(ioredisBytes("evalsha", ["s".repeat(40), "1", "p:job:j:results", "3", encodeFramed(header, [output]), "4", encodeFramed({}, [])]))).toBe(true);
    }
    // A framed argument last, and alone.
    expect(respCommand(["set", "k", { framed: [Buffer.from("ab")] }]).equals(ioredisBytes("set", ["k", encodeBuffers([Buffer.from("ab")])]))).toBe(true);
  });
});

describe("own submissions", () => {
  const key = (s: string) => Buffer.from(s, "utf8");
  it("passes over only the record this process wrote, of its size, for a job still held; once", async () => {
    const own = new OwnSubmissions();
    const held = new Set(["a", "b"]);
    const holds = (id: string) => held.has(id);
    await own.append("a", 10, async () => undefined);
    await own.append("b", 10, async () => undefined);
    await own.append("c", 10, async () => undefined);
    expect(own.readBack(key("a"), Buffer.alloc(9), holds)).toBe(false); // another size: not ours
    expect(own.readBack(key("a"), Buffer.alloc(10), holds)).toBe(false); // the entry went with the first look
    expect(own.readBack(key("b"), Buffer.alloc(10), undefined)).toBe(false); // no holds(): every record decoded
    expect(own.readBack(key("b"), Buffer.alloc(10), holds)).toBe(true);
    expect(own.readBack(key("b"), Buffer.alloc(10), holds)).toBe(false); // seen again (a rebalance): decoded
    expect(own.readBack(key("c"), Buffer.alloc(10), holds)).toBe(false); // written, but the job is not held: adopted
    expect(own.readBack(null, Buffer.alloc(10), holds)).toBe(false);
    expect(new OwnSubmissions().readBack(key("a"), Buffer.alloc(10), () => true)).toBe(false); // a standby wrote nothing
  });

  it("forgets a submission whose send failed", async () => {
    const own = new OwnSubmissions();
    await expect(own.append("a", 10, async () => Promise.reject(new Error("broker down")))).rejects.toThrow("broker down");
    expect(own.readBack(key("a"), Buffer.alloc(10), () => true)).toBe(false);
  });
});
