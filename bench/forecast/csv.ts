/**
 * Loader for `timestamp,value` CSV traces.
 *
 * - The first line may be a header (any line whose value column is not a number
 *   and which is line 1); blank lines and lines starting with `#` are skipped.
 * - A timestamp is either a number of seconds (e.g. `300`, `1.5e3`) or a date
 *   string understood as UTC: `2014-02-14 14:30:00`, `2014-02-14T14:30:00Z`,
 *   optionally with fractional seconds.
 * - Any other malformed row throws a `TraceFormatError` naming the file and
 *   the 1-based line number.
 */
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

export interface Series {
  name: string;
  /** Sample times in milliseconds since the epoch (or since 0 for numeric-seconds files). */
  tMs: number[];
  values: number[];
}

export class TraceFormatError extends Error {
  readonly line: number;
  constructor(source: string, line: number, message: string) {
    super(`${source}:${line}: ${message}`);
    this.name = "TraceFormatError";
    this.line = line;
  }
}

const NUMBER_RE = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/;

/** Parses a timestamp cell to milliseconds; returns null when it is neither format. */
export function parseTimestamp(cell: string): number | null {
  const s = cell.trim();
  if (NUMBER_RE.test(s)) {
    const v = Number(s) * 1000;
    return Number.isFinite(v) ? v : null;
  }
  const m = DATE_RE.exec(s);
  if (!m) return null;
  const [, y, mo, d, h, mi, sec, frac, tz] = m;
  const month = Number(mo), day = Number(d), hour = Number(h), minute = Number(mi), second = sec === undefined ? 0 : Number(sec);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return null;
  let ms = Date.UTC(Number(y), month - 1, day, hour, minute, second);
  if (frac) ms += Math.round(Number(frac) * 1000);
  if (tz && tz !== "Z") {
    const sign = tz.startsWith("-") ? -1 : 1;
    const digits = tz.slice(1).replace(":", "");
    ms -= sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2))) * 60_000;
  }
  return ms;
}

export function parseTraceCsv(text: string, source = "<csv>"): Series {
  const tMs: number[] = [];
  const values: number[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i]!.trim();
    if (line === "" || line.startsWith("#")) continue;
    const cells = line.split(",");
    if (cells.length !== 2) {
      if (i === 0) continue; // header with other columns is tolerated only on line 1... but then the data would not fit
      throw new TraceFormatError(source, lineNo, `expected 2 columns "timestamp,value", got ${cells.length}`);
    }
    const [tCell, vCell] = cells as [string, string];
    const vStr = vCell.trim();
    const isNum = NUMBER_RE.test(vStr);
    if (!isNum && i === 0 && tMs.length === 0) continue; // header
    if (!isNum) throw new TraceFormatError(source, lineNo, `value ${JSON.stringify(vStr)} is not a number`);
    const t = parseTimestamp(tCell);
    if (t === null) throw new TraceFormatError(source, lineNo, `timestamp ${JSON.stringify(tCell.trim())} is neither seconds nor a date`);
    const prev = tMs[tMs.length - 1];
    if (prev !== undefined && t <= prev) {
      throw new TraceFormatError(source, lineNo, `timestamp ${JSON.stringify(tCell.trim())} is not after the previous row`);
    }
    tMs.push(t);
    values.push(Number(vStr));
  }
  if (lines.length > 0 && lines[0]!.split(",").length !== 2 && tMs.length === 0) {
    throw new TraceFormatError(source, 1, 'expected a "timestamp,value" header or data row');
  }
  return { name: source, tMs, values };
}

export function loadTraceCsv(path: string, name = path): Series {
  return parseTraceCsv(readFileSync(path, "utf8"), name);
}

/** Every `*.csv` under `dir` (recursively), sorted by relative path. */
export function findCsvFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d).sort()) {
      const p = join(d, entry);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && entry.toLowerCase().endsWith(".csv")) out.push(p);
    }
  };
  walk(dir);
  return out.sort((a, b) => relative(dir, a).localeCompare(relative(dir, b)));
}
