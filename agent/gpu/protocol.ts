// Messages between the agent and a GPU executor process (child_process IPC, "advanced"
// serialization so byte arrays cross without base64).
export type GpuMode = "auto" | "cpu";
export type GpuBackend = "headlessgl" | "cpu";

export type ToExecutor =
  | { type: "init"; mode: GpuMode }
  | { type: "run"; id: number; kernelId: string; module: Uint8Array; input: Uint8Array };

export interface ExecutorReady {
  type: "ready";
  backend: GpuBackend;
  /** GL_RENDERER (unmasked when the driver tells), e.g. "llvmpipe (LLVM 15.0.6, 256 bits)". */
  renderer: string;
  maxTextureSize: number;
  /** Why headlessgl is not used, when mode was auto and it is not. */
  glError?: string;
}

export type FromExecutor =
  | ExecutorReady
  | { type: "result"; id: number; output: Uint8Array; backend: GpuBackend; runMs: number; compileMs: number }
  | { type: "error"; id: number; code: "INVALID_KERNEL" | "TRAP"; message: string };
