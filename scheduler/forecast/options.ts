/**
 * Option validation shared by the forecasting classes. Every error names the
 * offending field (prefixed with the owning option object) so that a bad
 * configuration fails loudly and is easy to fix.
 */

export class ForecastOptionError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`invalid forecast option "${field}": ${message}`);
    this.name = "ForecastOptionError";
    this.field = field;
  }
}

export function checkFinite(field: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new ForecastOptionError(field, `must be a finite number, got ${describe(value)}`);
  }
  return value;
}

export function checkRange(
  field: string,
  value: unknown,
  min: number,
  max: number,
  opts: { minExclusive?: boolean; maxExclusive?: boolean } = {},
): number {
  const v = checkFinite(field, value);
  const lowOk = opts.minExclusive ? v > min : v >= min;
  const highOk = opts.maxExclusive ? v < max : v <= max;
  if (!lowOk || !highOk) {
    const lb = opts.minExclusive ? "(" : "[";
    const rb = opts.maxExclusive ? ")" : "]";
    throw new ForecastOptionError(field, `must be in ${lb}${min}, ${max}${rb}, got ${v}`);
  }
  return v;
}

export function checkInt(field: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = checkFinite(field, value);
  if (!Number.isInteger(v) || v < min || v > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`;
    throw new ForecastOptionError(field, `must be an integer ${range}, got ${v}`);
  }
  return v;
}

export function checkPositive(field: string, value: unknown): number {
  const v = checkFinite(field, value);
  if (v <= 0) throw new ForecastOptionError(field, `must be > 0, got ${v}`);
  return v;
}

export function checkNumberList(
  field: string,
  value: unknown,
  each: (field: string, v: unknown) => number,
  opts: { nonEmpty?: boolean } = {},
): number[] {
  if (!Array.isArray(value)) throw new ForecastOptionError(field, `must be an array, got ${describe(value)}`);
  if (opts.nonEmpty && value.length === 0) throw new ForecastOptionError(field, "must not be empty");
  return value.map((v, i) => each(`${field}[${i}]`, v));
}

/** Rejects keys that are not in `known`, so that typos do not silently fall back to defaults. */
export function checkKnownKeys(owner: string, value: unknown, known: readonly string[]): Record<string, unknown> {
  if (value === undefined) return {};
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ForecastOptionError(owner, `must be an object, got ${describe(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw new ForecastOptionError(`${owner}.${key}`, `unknown option (known: ${known.join(", ")})`);
    }
  }
  return value as Record<string, unknown>;
}

function describe(value: unknown): string {
  if (typeof value === "number") return String(value);
  if (typeof value === "string") return JSON.stringify(value);
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value;
}
