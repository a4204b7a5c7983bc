// The kernel manifest: what `distx kernel build` writes next to every .wasm, and what the
// CLI and scheduler read to know how a kernel was built and that the bytes are the ones built.
import { readFile } from "node:fs/promises";
import { z } from "zod";

export const KernelManifestSchema = z
  .object({
    /** Kernel name: the source file's basename without .ts/.c, or the Cargo package (- as _); also the .wasm basename. */
    name: z.string().regex(/^[A-Za-z0-9_.-]+$/, "must be a file-name-safe kernel name"),
    kind: z.literal("wasm"),
    /** The exported function the agent calls. */
    entry: z.literal("distx_run"),
    abi: z.literal("distx-abi-1"),
    /** Lower-case hex SHA-256 of the .wasm bytes. */
    sha256: z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lower-case hex digits"),
    sizeBytes: z.number().int().positive(),
    /** Source path (a .ts or .c file, or a Cargo project folder) relative to the manifest's directory (forward slashes). */
    source: z.string().min(1),
    compiler: z.object({
      name: z.enum(["assemblyscript", "clang", "rustc"]),
      version: z.string().min(1),
      flags: z.array(z.string()),
    }),
    /** ISO-8601 time of the build. */
    builtAt: z.iso.datetime({ offset: true }),
  });

export type KernelManifest = z.infer<typeof KernelManifestSchema>;

export class KernelManifestError extends Error {
  override readonly name = "KernelManifestError";
  constructor(
    message: string,
    /** Dotted paths of the offending fields, e.g. ["sha256", "compiler.version"]. */
    readonly fields: string[] = [],
  ) {
    super(message);
  }
}

/** Validates a parsed manifest; throws KernelManifestError naming each bad field. */
export function parseManifest(value: unknown, where = "kernel manifest"): KernelManifest {
  const result = KernelManifestSchema.safeParse(value);
  if (result.success) return result.data;
  const fields: string[] = [];
  const lines = result.error.issues.map((issue) => {
    const field = issue.path.length ? issue.path.map(String).join(".") : "(root)";
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) fields.push(issue.path.length ? `${field}.${key}` : key);
    } else {
      fields.push(field);
    }
    return `${field}: ${issue.message}`;
  });
  throw new KernelManifestError(`${where} is invalid: ${lines.join("; ")}`, fields);
}

/** Reads and validates a manifest file (e.g. build/kernels/gemm.manifest.json). */
export async function readManifest(path: string): Promise<KernelManifest> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new KernelManifestError(`cannot read kernel manifest ${path}: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new KernelManifestError(`kernel manifest ${path} is not JSON: ${(err as Error).message}`);
  }
  return parseManifest(value, `kernel manifest ${path}`);
}
