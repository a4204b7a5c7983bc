// Kernel logs (env.log): what a kernel writes, bounded per task and made safe to show. The text
// is the kernel author's, so it is untrusted wherever it goes: a terminal (`distx result --logs`,
// `distx kernel run`), a JSON log record, the dashboard. Every line is sanitised here — invalid
// UTF-8 replaced, control and bidi characters escaped as visible text — so no line can move a
// cursor, clear a screen, end a log record or reorder what is shown around it. The agent caps each
// task's log; the scheduler bounds what it stores again (an agent's word is not enough).

/** The agent's defaults (common/config.ts kernelLogBytes/kernelLogLines). */
export const DEFAULT_KERNEL_LOG_BYTES = 4096;
export const DEFAULT_KERNEL_LOG_LINES = 100;
/** The most an agent may be configured to keep per task: well inside the 64 KiB a result message keeps beside its output. */
export const MAX_KERNEL_LOG_BYTES = 32 * 1024;
export const MAX_KERNEL_LOG_LINES = 1024;
/** Room for the marker line (what was dropped) on top of the cap. */
const MARKER_ROOM_BYTES = 256;

// C0 and C1 controls and DEL (ESC sequences, CR, LF, BEL…), the bidi overrides and isolates
// (Trojan Source), the line and paragraph separators, and BOM/zero-width no-break space.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

const escapeChar = (c: string): string => {
  const code = c.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
};

/** One line made safe to print or store: lone surrogates replaced, control/bidi characters escaped (\x1b, \u202e). */
export function sanitizeLogLine(line: string): string {
  return line.replace(LONE_SURROGATE, "\ufffd").replace(UNSAFE, escapeChar);
}

// Not fatal: invalid UTF-8 becomes U+FFFD, as the brief for logs asks (a log line never fails a task).
const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/** `line` cut to at most `bytes` bytes of UTF-8, at a character boundary. */
function cutUtf8(line: string, bytes: number): string {
  const buf = Buffer.from(line, "utf8");
  let end = Math.min(bytes, buf.length);
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString("utf8");
}

/** Told of each line a KernelLog keeps and of what it drops (the agent mirrors a running task's log: agent/pool/log-mirror.ts). */
export interface KernelLogSink {
  kept(line: string): void;
  dropped(lines: number, bytes: number): void;
}

/** The last line of a log that reached its cap. */
export const dropMarker = (maxBytes: number, maxLines: number, lines: number, bytes: number): string =>
  `[distx] log cap reached (${maxBytes} bytes, ${maxLines} lines per task): dropped ${lines} more line(s), ${bytes} byte(s)`;

/**
 * One task's log: lines kept until `maxBytes` (UTF-8, after sanitising) or `maxLines`; the line
 * that crosses the byte cap is cut, later ones are only counted. `lines()` ends with a marker
 * saying how many lines and bytes were dropped, when any were.
 */
export class KernelLog {
  private readonly kept: string[] = [];
  private bytes = 0;
  private full = false;
  droppedLines = 0;
  droppedBytes = 0;

  constructor(
    readonly maxBytes: number = DEFAULT_KERNEL_LOG_BYTES,
    readonly maxLines: number = DEFAULT_KERNEL_LOG_LINES,
    private readonly sink?: KernelLogSink,
  ) {}

  /** One env.log call: UTF-8 bytes (copied here; nothing is decoded once the log is full). */
  write(bytes: Uint8Array): void {
    if (this.full || this.kept.length >= this.maxLines) return this.drop(bytes.byteLength);
    this.add(sanitizeLogLine(decoder.decode(bytes)));
  }

  /** A line already decoded (sanitised here). */
  add(raw: string): void {
    if (this.full || this.kept.length >= this.maxLines) return this.drop(Buffer.byteLength(raw));
    const line = sanitizeLogLine(raw);
    const size = Buffer.byteLength(line);
    if (this.bytes + size <= this.maxBytes) {
      this.keep(line, size);
      return;
    }
    // The line that crosses the cap keeps what fits (a long single line is still useful); nothing after it does.
    this.full = true;
    const room = this.maxBytes - this.bytes;
    const head = room > 0 ? cutUtf8(line, room) : "";
    if (head.length > 0) {
      const headBytes = Buffer.byteLength(head);
      this.keep(head, headBytes);
      this.droppedBytes += size - headBytes;
      this.sink?.dropped(this.droppedLines, this.droppedBytes);
    } else this.drop(size);
  }

  private keep(line: string, size: number): void {
    this.kept.push(line);
    this.bytes += size;
    this.sink?.kept(line);
  }

  private drop(bytes: number): void {
    this.full = true;
    this.droppedLines++;
    this.droppedBytes += bytes;
    this.sink?.dropped(this.droppedLines, this.droppedBytes);
  }

  /** The kept lines, then the marker line when anything was dropped. */
  lines(): string[] {
    if (this.droppedBytes === 0 && this.droppedLines === 0) return this.kept.slice();
    return [...this.kept, dropMarker(this.maxBytes, this.maxLines, this.droppedLines, this.droppedBytes)];
  }
}

/**
 * What the scheduler keeps of an agent's log lines: sanitised again and bounded by the most any
 * agent may be configured to send (plus its marker), so a wrong or hostile agent cannot store more.
 */
export function boundLogLines(lines: readonly string[] | undefined): string[] {
  if (!lines || lines.length === 0) return [];
  const log = new KernelLog(MAX_KERNEL_LOG_BYTES + MARKER_ROOM_BYTES, MAX_KERNEL_LOG_LINES + 1);
  for (const line of lines) log.add(line);
  return log.lines();
}

/** Bytes the lines take on the wire (for size budgets: a record, a results page). */
export const logBytes = (lines: readonly string[] | undefined): number => {
  let n = 0;
  for (const l of lines ?? []) n += Buffer.byteLength(l) + 2;
  return n;
};
