// One Redis command whose bytes are built once, for writes that carry a job's data. ioredis copies
// every Buffer argument into a fresh command buffer (Command.toWritable), and a transaction or
// pipeline then joins its commands into another: putJob's inputs were copied three times, with
// encodeBuffers' own join, before the socket took them (a third of the scheduler's Redis CPU on
// the 32 KiB Kafka + Redis bench row, and the large transient buffers its GC then collected).
// Here the RESP bytes, the framed buffer list included, are written into one buffer, once, and
// sent as a script (one command, so atomic as the transaction was) straight to the socket.
import { createHash } from "node:crypto";
import { Command, type Redis } from "ioredis";

/**
 * A list of buffers as encodeBuffers frames it ([u32 count][u32 length…][bytes…]), as one
 * argument; with `json`, as encodeFramed frames a header and buffers ([u32 length][json] first).
 */
export interface FramedArg {
  json?: string;
  framed: readonly Uint8Array[];
}
export type PreparedArg = string | FramedArg;

/** A command that writes the bytes it was given: ioredis neither re-encodes nor copies them. */
class PreparedCommand extends Command {
  constructor(
    name: string,
    private readonly bytes: Buffer,
  ) {
    super(name, []);
  }

  override toWritable(): Buffer {
    return this.bytes;
  }
}

function bulkString(s: string): string {
  return `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
}

/** The RESP array of `args`, each framed argument copied in once; byte for byte what ioredis writes for them (test/unit/redis-prepared.test.ts). */
export function respCommand(args: readonly PreparedArg[]): Buffer {
  let text = `*${args.length}\r\n`;
  const pieces: (string | FramedArg)[] = [];
  let size = 0;
  for (const a of args) {
    if (typeof a === "string") {
      text += bulkString(a);
      continue;
    }
    let n = (a.json === undefined ? 0 : 4 + Buffer.byteLength(a.json)) + 4 + 4 * a.framed.length;
    for (const b of a.framed) n += b.byteLength;
    text += `$${n}\r\n`;
    pieces.push(text, a);
    size += Buffer.byteLength(text) + n;
    text = "\r\n";
  }
  pieces.push(text);
  size += Buffer.byteLength(text);
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const p of pieces) {
    if (typeof p === "string") {
      at += out.write(p, at, "utf8");
      continue;
    }
    if (p.json !== undefined) {
      const n = out.write(p.json, at + 4, "utf8");
      out.writeUInt32BE(n, at);
      at += 4 + n;
    }
    at = out.writeUInt32BE(p.framed.length, at);
    for (const b of p.framed) at = out.writeUInt32BE(b.byteLength, at);
    for (const b of p.framed) {
      out.set(b, at);
      at += b.byteLength;
    }
  }
  return out;
}

/** A Lua script sent with prepared arguments: EVALSHA, and EVAL once where Redis has not cached it (NOSCRIPT). */
export class PreparedScript {
  private readonly sha: string;

  constructor(private readonly lua: string) {
    this.sha = createHash("sha1").update(lua).digest("hex");
  }

  /**
   * Sends the script at once, outside ioredis's auto-pipelining (as a transaction is sent): the
   * bytes are built once and written as they are. On NOSCRIPT (a restarted Redis) it is sent
   * again as EVAL, which caches it for the next EVALSHA.
   */
  run(redis: Redis, keys: readonly string[], args: readonly PreparedArg[]): Promise<unknown> {
    const send = (name: "evalsha" | "eval", first: string): Promise<unknown> => {
      const cmd = new PreparedCommand(name, respCommand([name, first, String(keys.length), ...keys, ...args]));
      void redis.sendCommand(cmd);
      return cmd.promise;
    };
    return send("evalsha", this.sha).catch((err: Error) => {
      if (!err.message.includes("NOSCRIPT")) throw err;
      return send("eval", this.lua);
    });
  }
}
