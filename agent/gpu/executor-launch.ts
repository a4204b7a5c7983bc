// How one GPU executor child process is launched: its script, the environment it may see,
// what it may read, and its resource limits, for the sandbox (sandbox.ts) to apply. Kept apart
// from the executor pool so the escape tests probe exactly this launch.
import { chmodSync, chownSync, copyFileSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { repoRoot } from "../../common/paths.js";
import type { GpuMode } from "./protocol.js";
import { hostTools, sandboxIds, type SandboxLaunch } from "./sandbox.js";

/** An executor's limits (GpuPoolOptions has the same fields). */
export interface ExecutorLimits {
  /** V8 heap cap, MiB. */
  memoryLimitMb: number;
  /** RLIMIT_AS, MiB (default: heap + 3 GiB in cpu mode, heap + 16 GiB with GL). */
  addressSpaceMb?: number;
  /** RLIMIT_CPU, seconds over the executor's life (default 3600). */
  cpuSeconds?: number;
}

/** Environment variables an executor may see: what GL/X needs to find a display and driver. Nothing else. */
const PASS_ENV = /^(PATH|DISPLAY|XAUTHORITY|LD_LIBRARY_PATH|LIBGL_.*|MESA_.*|GALLIUM_.*|__GLX_.*|__EGL_.*|EGL_PLATFORM|NVIDIA_.*|CUDA_VISIBLE_DEVICES)$/;

export function executorEnv(parent: NodeJS.ProcessEnv, home: string): NodeJS.ProcessEnv {
  // Mesa's shader cache would write under HOME; the executor may not write files.
  const env: NodeJS.ProcessEnv = { HOME: home, TMPDIR: home, NODE_ENV: "production", MESA_SHADER_CACHE_DISABLE: "true" };
  for (const [k, v] of Object.entries(parent)) if (v !== undefined && PASS_ENV.test(k)) env[k] = v;
  return env;
}

/** The compiled executor beside this file; from sources (vitest), the built one in dist/. */
export const executorScript = (): string => {
  const local = path.join(path.dirname(fileURLToPath(import.meta.url)), "executor.js");
  return existsSync(local) ? local : path.join(repoRoot(), "dist", "agent", "gpu", "executor.js");
};

/**
 * The node_modules folders the executor loads from: those Node's resolution walks from the
 * script's folder up (each as found and as its real path, since a symlinked node_modules is
 * stat-ed under both), plus where gpu.js really resolves.
 */
function dependencyDirs(script: string): string[] {
  const dirs = new Set<string>();
  for (let dir = path.dirname(script); ; dir = path.dirname(dir)) {
    const nm = path.join(dir, "node_modules");
    if (existsSync(nm)) dirs.add(nm);
    if (path.dirname(dir) === dir) break;
  }
  for (const pkg of ["gpu.js", "gl"]) {
    try {
      const file = createRequire(script).resolve(pkg);
      const at = file.lastIndexOf(`${path.sep}node_modules${path.sep}`);
      if (at >= 0) dirs.add(file.slice(0, at + "/node_modules".length));
    } catch {
      // the executor reports that gpu.js is missing; gl is optional
    }
  }
  return [...dirs];
}

/**
 * The X cookie file (XAUTHORITY, e.g. xvfb-run's) is the agent's own, mode 0600: the executor,
 * dropped to another user, could not authenticate to the display and GL would not open. It gets
 * its own copy in its work folder, readable only by the sandbox user. (The display itself is
 * shared with the executor either way: GLX needs it.)
 */
function shareXAuthority(env: NodeJS.ProcessEnv, workDir: string): void {
  const from = env.XAUTHORITY;
  if (!from || !hostTools().root || !existsSync(from)) return;
  const copy = path.join(workDir, ".Xauthority");
  try {
    copyFileSync(from, copy);
    const { uid, gid } = sandboxIds({});
    chownSync(copy, uid, gid);
    chmodSync(copy, 0o400);
    env.XAUTHORITY = copy;
  } catch {
    // the executor then reports that GL cannot open the display
  }
}

/**
 * The sandboxed launch of one executor (agent/gpu/sandbox.ts): what it may read is its own
 * compiled code (the dist tree it sits in) and its dependencies; native addons only when GL is
 * probed. Exported so that the escape tests run their probe under exactly this launch.
 */
export function executorLaunch(script: string, mode: GpuMode, options: ExecutorLimits, workDir: string): SandboxLaunch {
  const codeRoot = path.resolve(path.dirname(executorScript()), "..", "..");
  const pkg = path.join(path.dirname(codeRoot), "package.json");
  const env = executorEnv(process.env, workDir);
  if (mode === "auto") shareXAuthority(env, workDir);
  return {
    script,
    cwd: workDir,
    env,
    limits: {
      heapMb: options.memoryLimitMb,
      addressSpaceMb: options.addressSpaceMb ?? options.memoryLimitMb + (mode === "auto" ? 16384 : 3072),
      cpuSeconds: options.cpuSeconds ?? 3600,
    },
    readPaths: [codeRoot, ...(existsSync(pkg) ? [pkg] : []), ...dependencyDirs(executorScript())],
    allowAddons: mode === "auto",
  };
}
