// The gpu.js kernel module format ("distx-gpu-1"): what `distx kernel build` makes from a
// *.gpu.js source, what RegisterKernel stores (content-addressed by the sha256 of these exact
// bytes) and what the GPU executor runs. A module is canonical JSON:
//   * source    the kernel function's text, checked against a small safe subset of JS (below);
//   * header    little-endian fields at the start of each task input (u32/i32/f32/f64);
//   * args      kernel arguments in order: a header field (scalar, passed as a float), or a
//               float32 array read after the header, row-major, with a shape over header fields;
//   * constants compile-time constants (loop bounds) from header fields or literals;
//   * output    gpu.js output [x] / [x, y] / [x, y, z] (x fastest), from header fields or literals;
//   * result    how each output float becomes bytes: f32 as is, u32/i32 rounded.
// Kernels are untrusted: the source check means a kernel can read only its arguments,
// this.thread / this.constants / this.output and Math — no globals, no strings, no calls but Math.*
// — and gpu.js is only ever given text generated from the checked tree (compileGpuKernel).
import { z } from "zod";
import { compileKernelSource, type CompiledKernelSource, type KernelArgSpec } from "./kernel-source.js";

export type { CompiledKernelSource, KernelArgSpec } from "./kernel-source.js";

export const GPU_ABI = "distx-gpu-1";
/** gpu.js (WebGL1 under headless-gl) indexes textures with float32 math: exact up to 2^24. */
export const MAX_GPU_ELEMENTS = 1 << 24;
/** Largest output or input dimension we accept before asking the GL context (8192 is common on phones, 16384 on desktops and llvmpipe). */
export const MAX_GPU_DIMENSION = 16384;
export const MAX_LOOP_ITERATIONS = 1_000_000;

// Names become object keys (header fields, constants): the ones with special meaning on objects are refused.
const ident = z
  .string()
  .max(64)
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an identifier")
  .refine((s) => !["__proto__", "constructor", "prototype"].includes(s), "must not be __proto__, constructor or prototype");
const dim = z.union([ident, z.number().int().min(1).max(MAX_GPU_ELEMENTS)]);
const headerType = z.enum(["u32", "i32", "f32", "f64"]);

export const GpuKernelModuleSchema = z
  .object({
    abi: z.literal(GPU_ABI),
    name: z.string().regex(/^[A-Za-z0-9_.-]+$/, "must be a file-name-safe kernel name").max(200),
    source: z.string().min(10).max(64 * 1024),
    header: z.array(z.object({ name: ident, type: headerType }).strict()).max(64),
    args: z
      .array(
        z.discriminatedUnion("kind", [
          z.object({ kind: z.literal("scalar"), name: ident, from: ident }).strict(),
          z.object({ kind: z.literal("array"), name: ident, type: z.literal("f32"), shape: z.array(dim).min(1).max(3) }).strict(),
        ]),
      )
      .max(16),
    constants: z.record(ident, z.union([ident, z.number()])).default({}),
    output: z.array(dim).min(1).max(3),
    result: z.enum(["f32", "u32", "i32"]),
    settings: z
      .object({
        loopMaxIterations: z.number().int().min(1).max(MAX_LOOP_ITERATIONS).optional(),
        tactic: z.enum(["speed", "balanced", "precision"]).optional(),
      })
      .strict()
      .default({}),
  })
  .strict();

export type GpuKernelModule = z.infer<typeof GpuKernelModuleSchema>;
export type HeaderType = z.infer<typeof headerType>;

export class GpuModuleError extends Error {
  override readonly name = "GpuModuleError";
}

const HEADER_SIZE: Record<HeaderType, number> = { u32: 4, i32: 4, f32: 4, f64: 8 };

/** Canonical bytes of a module: the thing that is hashed, registered and shipped. */
export function encodeGpuModule(m: GpuKernelModule): Uint8Array {
  const ordered = {
    abi: m.abi,
    name: m.name,
    source: m.source,
    header: m.header,
    args: m.args,
    constants: m.constants,
    output: m.output,
    result: m.result,
    settings: m.settings,
  };
  return new TextEncoder().encode(JSON.stringify(ordered, null, 2) + "\n");
}

/** Parses and fully validates module bytes (schema, names, and the kernel source). */
export function parseGpuModule(bytes: Uint8Array): GpuKernelModule {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    throw new GpuModuleError(`a gpu kernel module must be UTF-8 JSON (${GPU_ABI}): ${(err as Error).message}`);
  }
  const parsed = GpuKernelModuleSchema.safeParse(value);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.map(String).join(".") || "(root)"}: ${i.message}`);
    throw new GpuModuleError(`gpu kernel module is invalid: ${lines.join("; ")}`);
  }
  const m = parsed.data;
  const fields = new Set(m.header.map((h) => h.name));
  if (fields.size !== m.header.length) throw new GpuModuleError("header: field names must be unique");
  const needField = (where: string, d: string | number) => {
    if (typeof d === "string" && !fields.has(d)) throw new GpuModuleError(`${where}: ${JSON.stringify(d)} is not a header field`);
  };
  for (const a of m.args) {
    if (a.kind === "scalar") needField(`args.${a.name}.from`, a.from);
    else a.shape.forEach((d, i) => needField(`args.${a.name}.shape[${i}]`, d));
  }
  if (new Set(m.args.map((a) => a.name)).size !== m.args.length) throw new GpuModuleError("args: names must be unique");
  for (const [k, v] of Object.entries(m.constants)) needField(`constants.${k}`, v);
  m.output.forEach((d, i) => needField(`output[${i}]`, d));
  checkKernelSource(m.source, kernelArgSpecs(m), Object.keys(m.constants));
  return m;
}

// ───────────── the kernel source subset ─────────────

/** The kernel's arguments as the source checker sees them: scalars, or arrays of their shape's rank. */
function kernelArgSpecs(m: Pick<GpuKernelModule, "args">): KernelArgSpec[] {
  return m.args.map((a) => ({ name: a.name, depth: a.kind === "scalar" ? 0 : a.shape.length }));
}

/**
 * Checks a kernel source against the safe subset (kernels/gpu/kernel-source.ts) and returns the
 * canonical text generated from its syntax tree — the only text that may be handed to gpu.js.
 * Plain argument names (as older callers pass) are taken as one-dimensional arrays.
 */
export function checkKernelSource(source: string, args: readonly (string | KernelArgSpec)[], constants: ReadonlySet<string> | readonly string[]): CompiledKernelSource {
  const specs = args.map((a) => (typeof a === "string" ? { name: a, depth: 1 } : a));
  return compileKernelSource(source, specs, [...constants], (message) => new GpuModuleError(message));
}

/** The generated kernel text and its generated names, for a validated module. */
export function compileGpuKernel(m: GpuKernelModule): CompiledKernelSource {
  return checkKernelSource(m.source, kernelArgSpecs(m), Object.keys(m.constants));
}

// ───────────── task input → kernel arguments, output → bytes ─────────────

export interface DecodedTask {
  header: Record<string, number>;
  /** Kernel arguments in order: numbers for scalars, { data, size } for arrays (gpu.js input(data, size)). */
  args: (number | { data: Float32Array; size: number[] })[];
  constants: Record<string, number>;
  /** gpu.js output [x, y?, z?]. */
  output: number[];
}

export function decodeTask(m: GpuKernelModule, input: Uint8Array): DecodedTask {
  const view = new DataView(input.buffer, input.byteOffset, input.byteLength);
  const header: Record<string, number> = Object.create(null) as Record<string, number>;
  let off = 0;
  for (const f of m.header) {
    const size = HEADER_SIZE[f.type];
    if (off + size > input.byteLength) throw new GpuModuleError(`task input of ${input.byteLength} bytes is shorter than the ${m.name} header`);
    header[f.name] = f.type === "u32" ? view.getUint32(off, true) : f.type === "i32" ? view.getInt32(off, true) : f.type === "f32" ? view.getFloat32(off, true) : view.getFloat64(off, true);
    off += size;
  }
  const resolve = (where: string, d: string | number): number => (typeof d === "number" ? d : header[d]!);
  const dimension = (where: string, d: string | number): number => {
    const v = resolve(where, d);
    if (!Number.isInteger(v) || v < 1 || v > MAX_GPU_DIMENSION) {
      throw new GpuModuleError(`${where} = ${v}: dimensions must be whole numbers in 1..${MAX_GPU_DIMENSION}`);
    }
    return v;
  };
  const args: DecodedTask["args"] = [];
  for (const a of m.args) {
    if (a.kind === "scalar") {
      args.push(header[a.from]!);
      continue;
    }
    const shape = a.shape.map((d, i) => dimension(`${a.name}.shape[${i}]`, d));
    const count = shape.reduce((p, s) => p * s, 1);
    if (count > MAX_GPU_ELEMENTS) throw new GpuModuleError(`argument ${a.name} has ${count} elements; the limit is ${MAX_GPU_ELEMENTS} (2^24)`);
    if (off % 4 !== 0) throw new GpuModuleError(`argument ${a.name} starts at byte ${off}, not 4-byte aligned`);
    if (off + count * 4 > input.byteLength) {
      throw new GpuModuleError(`task input of ${input.byteLength} bytes is too short for ${a.name} (${shape.join("×")} f32 at byte ${off})`);
    }
    // Copy: the input buffer may be shared/unaligned, and gpu.js may keep references.
    const data = new Float32Array(count);
    data.set(new Float32Array(input.buffer.slice(input.byteOffset + off, input.byteOffset + off + count * 4)));
    off += count * 4;
    // gpu.js sizes are [x, y, z] with x fastest: the reverse of a row-major shape.
    args.push({ data, size: [...shape].reverse() });
  }
  const constants: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const [k, v] of Object.entries(m.constants)) {
    const value = resolve(`constants.${k}`, v);
    if (!Number.isFinite(value)) throw new GpuModuleError(`constant ${k} = ${value} is not finite`);
    constants[k] = value;
  }
  const output = m.output.map((d, i) => dimension(`output[${i}]`, d));
  const total = output.reduce((p, s) => p * s, 1);
  if (total > MAX_GPU_ELEMENTS) throw new GpuModuleError(`output has ${total} elements; the limit is ${MAX_GPU_ELEMENTS} (2^24)`);
  return { header, args, constants, output };
}

/** Flattens gpu.js output (Float32Array, or nested arrays of rows) into result bytes, row-major. */
export function encodeOutput(m: GpuKernelModule, output: number[], result: unknown): Uint8Array {
  const total = output.reduce((p, s) => p * s, 1);
  const flat = new Float32Array(total);
  let pos = 0;
  const push = (v: unknown): void => {
    if (v instanceof Float32Array || Array.isArray(v)) {
      if (v instanceof Float32Array && (v.length === output[0] || output.length === 1)) {
        flat.set(v.subarray(0, Math.min(v.length, total - pos)), pos);
        pos += v.length;
      } else for (const x of v as ArrayLike<unknown> & Iterable<unknown>) push(x);
    } else if (typeof v === "number") flat[pos++] = v;
    else throw new GpuModuleError("kernel returned a value that is not numbers");
  };
  push(result);
  if (pos !== total) throw new GpuModuleError(`kernel produced ${pos} values, expected ${total}`);
  if (m.result === "f32") return new Uint8Array(flat.buffer);
  const out = m.result === "u32" ? new Uint32Array(total) : new Int32Array(total);
  for (let i = 0; i < total; i++) out[i] = Math.round(flat[i]!);
  return new Uint8Array(out.buffer);
}
