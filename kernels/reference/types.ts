// The shape every example kernel's JS side has (see kernels/reference/index.ts).

export interface MakeTasksOptions {
  /** How many task inputs to produce (exactly this many; some may be empty if the job is tiny). */
  tasks: number;
  /** Scales the whole job's work; each kernel documents its meaning and default. */
  size?: number;
  /** Seed for the generated data, so a job is reproducible. */
  seed?: number;
}

export interface CheckResult {
  ok: boolean;
  detail: string;
}

export interface ExampleKernel {
  /** Matches the .wasm/manifest name (the source file's basename). */
  name: string;
  description: string;
  /** What `size` means for this kernel, and its default. */
  sizeHelp: string;
  defaultSize: number;
  /** Split a job into `tasks` task inputs; `size` scales the work (documented per kernel). */
  makeTasks(opts: MakeTasksOptions): Uint8Array[];
  /** Plain-JS reference for one task input. */
  reference(input: Uint8Array): Uint8Array;
  /** Compare a kernel output with the reference (float tolerance where float). */
  check(input: Uint8Array, output: Uint8Array): CheckResult;
  /** One line summarising a whole job's outputs, e.g. "pi ≈ 3.14159 from 4,000,000 samples". */
  summarize(inputs: Uint8Array[], outputs: Uint8Array[]): string;
  /** Floating-point operations one task input costs (for GFLOP/s), when that makes sense. */
  flops?(input: Uint8Array, output: Uint8Array): number;
  /**
   * The same job with the data every task reads as shared inputs (sent once, fetched once per
   * agent), for kernels that can take it that way; `inline` turns one such task input back into
   * the self-contained one that reference, check and summarize read.
   */
  shared?: {
    makeTasks(opts: MakeTasksOptions): { inputs: Uint8Array[]; shared: { name: string; data: Uint8Array }[] };
    inline(input: Uint8Array, shared: Uint8Array[]): Uint8Array;
  };
}
