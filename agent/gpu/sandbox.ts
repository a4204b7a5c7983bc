// The second wall of the GPU sandbox: the executor process runs with no ambient authority.
// Kernel text is already regenerated from a checked syntax tree (kernels/gpu/kernel-source.ts);
// this wall is for the day that check has a hole, and for native code (headless-gl, the GL
// driver) that Node's permission model does not see. The executor is started as
//
//   unshare -n  setpriv --reuid/--regid nobody --clear-groups --no-new-privs --bounding-set=-all
//   prlimit --as --cpu --fsize=0 --core=0  node --experimental-permission --allow-fs-read=<code>
//
//   * unshare -n: a fresh network namespace with only a downed loopback — no socket reaches
//     anything (Node 20's permission model has no network permission).
//   * setpriv: an unprivileged uid/gid with no supplementary groups, no capabilities, and
//     no_new_privs, so it cannot read root's files or regain privilege through setuid binaries.
//   * prlimit: address space (RLIMIT_AS, on top of the V8 heap cap), CPU seconds (RLIMIT_CPU),
//     no file growth (RLIMIT_FSIZE=0: even native code cannot write file contents) and no cores.
//   * Node's permission model: fs reads only of the executor's code and node_modules, no fs
//     writes, no child processes, no worker threads, no WASI, and native addons only where GL is
//     wanted (--allow-addons, mode auto: headless-gl is one).
//
// Each wall is probed; one that is unavailable (not root, no unshare, no setpriv) is reported in
// SandboxPlan.walls with why, and the pool logs it as a warning — never silently.
import { spawnSync, fork, type ChildProcess } from "node:child_process";
import { accessSync, constants as fsConstants, existsSync, readdirSync, realpathSync, statSync } from "node:fs";
import path from "node:path";

export interface SandboxLimits {
  /** V8 old-space cap (--max-old-space-size), MiB. */
  heapMb: number;
  /** RLIMIT_AS, MiB: all memory the process may map (heap, code, GL driver). */
  addressSpaceMb: number;
  /** RLIMIT_CPU, seconds of CPU over the process's life; past it the process is killed (SIGXCPU). */
  cpuSeconds: number;
}

export interface SandboxLaunch {
  /** The entry script (absolute path); it is always readable. */
  script: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  limits: SandboxLimits;
  /** Files and directories the process may read (besides the script). */
  readPaths: string[];
  /**
   * Paths the permission model lets it read that it does not need to start: the user wall stays up
   * even when other users cannot read them (the OS then refuses them instead).
   */
  mayRead?: string[];
  /** Allow native addons (headless-gl). Off in cpu mode. */
  allowAddons: boolean;
  /** The unprivileged uid/gid used when the agent runs as root (default 65534, nobody/nogroup). */
  uid?: number;
  gid?: number;
}

export type WallName = "user" | "network" | "permissions" | "limits";

export interface Wall {
  name: WallName;
  on: boolean;
  detail: string;
}

export interface SandboxPlan {
  execPath: string;
  execArgv: string[];
  walls: Wall[];
}

interface HostTools {
  root: boolean;
  unshare?: string;
  setpriv?: string;
  prlimit?: string;
  /** unshare -n works here (root, and a kernel/container that allows new network namespaces). */
  netns: boolean;
  /** unshare --user --map-current-user -n works (unprivileged user namespaces), for non-root agents. */
  userNetns: boolean;
  permissionFlag?: string;
  addonsFlag: boolean;
  disableWarning: boolean;
}

let tools: HostTools | undefined;

function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":").concat(["/usr/bin", "/usr/sbin", "/bin", "/sbin"])) {
    const p = path.join(dir, name);
    try {
      accessSync(p, fsConstants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

const works = (cmd: string, args: string[]): boolean => {
  const r = spawnSync(cmd, args, { stdio: "ignore", timeout: 5000 });
  return r.status === 0;
};

/** What this host offers; probed once per process (a few short process runs). */
export function hostTools(): HostTools {
  if (tools) return tools;
  const root = process.getuid?.() === 0;
  const unshare = which("unshare");
  const flags = process.allowedNodeEnvironmentFlags;
  tools = {
    root,
    unshare,
    setpriv: which("setpriv"),
    prlimit: which("prlimit"),
    netns: !!unshare && root && works(unshare, ["-n", "--", "true"]),
    userNetns: !!unshare && !root && works(unshare, ["--user", "--map-current-user", "-n", "--", "true"]),
    // Node 22+ calls it --permission; Node 20 --experimental-permission.
    permissionFlag: flags.has("--permission") ? "--permission" : flags.has("--experimental-permission") ? "--experimental-permission" : undefined,
    addonsFlag: flags.has("--allow-addons"),
    disableWarning: flags.has("--disable-warning"),
  };
  return tools;
}

/** A path the given uid can read as "other": every ancestor searchable, the path itself readable. */
function readableByOthers(p: string): boolean {
  try {
    let cur = path.resolve(p);
    if (!(statSync(cur).mode & 0o004)) return false;
    for (;;) {
      const parent = path.dirname(cur);
      if (parent === cur) return true;
      if (!(statSync(parent).mode & 0o001)) return false;
      cur = parent;
    }
  } catch {
    return false;
  }
}

const real = (p: string): string => {
  try {
    return realpathSync(p);
  } catch {
    return path.resolve(p);
  }
};

/**
 * Groups that own GPU device nodes (/dev/dri/renderD*, /dev/nvidia*: often "render"/"video")
 * and do not already let everyone in: kept with addons (GL), so hardware GL still opens its device.
 */
function gpuDeviceGroups(): number[] {
  const gids = new Set<number>();
  for (const dir of ["/dev/dri", "/dev"]) {
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names) {
      if (dir === "/dev" && !n.startsWith("nvidia")) continue;
      try {
        const st = statSync(path.join(dir, n));
        if (st.isCharacterDevice() && st.gid !== 0 && (st.mode & 0o006) !== 0o006) gids.add(st.gid);
      } catch {
        // gone or unreadable
      }
    }
  }
  return [...gids];
}

/** The uid/gid a root agent drops its executors to. */
export const sandboxIds = (l: Pick<SandboxLaunch, "uid" | "gid">): { uid: number; gid: number } => ({ uid: l.uid ?? 65534, gid: l.gid ?? 65534 });

/** Builds the command line for a sandboxed Node child, and says which walls are up. */
export function planSandbox(l: SandboxLaunch): SandboxPlan {
  const t = hostTools();
  const walls: Wall[] = [];
  const prefix: string[] = [];
  const expand = (ps: string[]) => [...new Set(ps.filter((p) => existsSync(p)).flatMap((p) => [path.resolve(p), real(p)]))];
  const needed = expand([l.script, ...l.readPaths]);
  const reads = expand([l.script, ...l.readPaths, ...(l.mayRead ?? [])]);

  // Network: a fresh namespace (and, as non-root, a user namespace to be allowed to make one).
  if (t.netns) {
    prefix.push(t.unshare!, "-n", "--");
    walls.push({ name: "network", on: true, detail: "fresh network namespace (unshare -n): no interfaces but a downed loopback" });
  } else if (t.userNetns) {
    prefix.push(t.unshare!, "--user", "--map-current-user", "-n", "--");
    walls.push({ name: "network", on: true, detail: "fresh user+network namespace (unshare --user -n): no interfaces but a downed loopback" });
  } else {
    walls.push({
      name: "network",
      on: false,
      detail: !t.unshare ? "unshare (util-linux) is not installed: the executor can open network sockets" : "this host refuses new network namespaces (not root, or a container without CAP_SYS_ADMIN): the executor can open network sockets",
    });
  }

  // User: drop to an unprivileged uid/gid — only possible as root, and only if it can read its code.
  const { uid, gid } = sandboxIds(l);
  const unreadable = needed.filter((p) => !readableByOthers(p));
  if (t.root && t.setpriv && unreadable.length === 0) {
    const groups = l.allowAddons ? gpuDeviceGroups() : [];
    prefix.push(t.setpriv, `--reuid=${uid}`, `--regid=${gid}`, groups.length > 0 ? `--groups=${groups.join(",")}` : "--clear-groups", "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--");
    const which = groups.length > 0 ? `only the GPU device groups ${groups.join(",")}` : "no supplementary groups";
    walls.push({ name: "user", on: true, detail: `uid ${uid} gid ${gid}, ${which}, no capabilities, no_new_privs` });
  } else {
    const me = `uid ${process.getuid?.() ?? "?"}`;
    walls.push({
      name: "user",
      on: false,
      detail: !t.root
        ? `the agent is not root, so the executor runs as the agent's own user (${me}) and can read what it can`
        : !t.setpriv
          ? "setpriv (util-linux) is not installed: the executor runs as root"
          : `the executor's code is not readable by other users (${unreadable[0]}): the executor runs as root; install it world-readable to drop to uid ${uid}`,
    });
  }

  // Limits: address space, CPU time, no file growth, no core dumps.
  const { heapMb, addressSpaceMb, cpuSeconds } = l.limits;
  if (t.prlimit) {
    const as = addressSpaceMb * 1024 * 1024;
    prefix.push(t.prlimit, `--as=${as}:${as}`, `--cpu=${cpuSeconds}:${cpuSeconds + 5}`, "--fsize=0:0", "--core=0:0", "--");
    walls.push({ name: "limits", on: true, detail: `heap ${heapMb} MiB, address space ${addressSpaceMb} MiB, ${cpuSeconds} s CPU, no file writes (RLIMIT_FSIZE 0), no core dumps` });
  } else {
    walls.push({ name: "limits", on: false, detail: `prlimit (util-linux) is not installed: only the V8 heap cap (${heapMb} MiB) applies` });
  }

  // Node's permission model.
  const node: string[] = [`--max-old-space-size=${heapMb}`];
  if (t.permissionFlag && (!l.allowAddons || t.addonsFlag)) {
    node.push(t.permissionFlag, ...reads.map((p) => `--allow-fs-read=${p}`));
    // "Permission is an experimental feature" on every start would crowd the last stderr lines
    // the pool reports when an executor dies.
    if (t.disableWarning) node.push("--disable-warning=ExperimentalWarning");
    if (l.allowAddons) node.push("--allow-addons");
    walls.push({
      name: "permissions",
      on: true,
      detail: `Node permission model: reads only of its code, no writes, no child processes, no workers${l.allowAddons ? ", native addons allowed (headless-gl)" : ", no native addons"}`,
    });
  } else {
    walls.push({
      name: "permissions",
      on: false,
      detail: !t.permissionFlag ? `this Node (${process.version}) has no permission model` : `this Node (${process.version}) cannot allow native addons (headless-gl) under its permission model`,
    });
  }
  // Not every Node flag may be given in NODE_OPTIONS, and fork() passes execArgv after execPath.
  const [execPath, ...rest] = prefix.length > 0 ? [...prefix, process.execPath, ...node] : [process.execPath, ...node];
  return { execPath: execPath!, execArgv: rest, walls };
}

/** Starts `script` as a sandboxed Node child with an IPC channel ("advanced" serialization). */
export function launchSandboxed(l: SandboxLaunch): { child: ChildProcess; plan: SandboxPlan } {
  const plan = planSandbox(l);
  const child = fork(l.script, [], {
    cwd: l.cwd,
    env: l.env,
    // fork() runs execPath with execArgv, then the script: the wrappers exec each other in turn
    // and the IPC descriptor survives every exec.
    execPath: plan.execPath,
    execArgv: plan.execArgv,
    serialization: "advanced",
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  return { child, plan };
}
