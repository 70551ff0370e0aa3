// Per-kernel cgroups for the limits rlimits cannot give (process count per kernel, memory of the
// whole process tree). Detects cgroup v1 or v2 at run time from /proc/self/cgroup and the mounts;
// the decision (`planCgroups`) is pure, the file writes are the thin edge.
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmdirSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";

export interface CgroupLayout {
  version: "v1" | "v2" | "none";
  /** Directory under which per-kernel pids cgroups are created; null when unavailable. */
  pidsParent: string | null;
  /** Likewise for memory; null when unavailable (then RLIMIT_AS alone bounds memory). */
  memoryParent: string | null;
  /** Why a controller is missing, for the loud log line. */
  notes: string[];
}

/** Our own cgroup per v1 controller ("pids" -> "/a/b") and the v2 path under key "". */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    for (const c of m[1]!.split(",")) out.set(c, m[2]!);
  }
  return out;
}

export interface HostFacts {
  root: string;
  procSelfCgroup: string;
  /** Whether a path exists and is writable by us (probed by the caller). */
  writable: (path: string) => boolean;
  /** Contents of a file, or null. */
  read: (path: string) => string | null;
}

/** Pure: where per-kernel cgroups can go on this host, from the facts the caller probed. */
export function planCgroups(f: HostFacts): CgroupLayout {
  const own = parseProcCgroup(f.procSelfCgroup);
  const notes: string[] = [];
  const v2controllers = f.read(join(f.root, "cgroup.controllers"));
  if (v2controllers !== null) {
    const base = join(f.root, own.get("") ?? "/");
    const enabled = (f.read(join(base, "cgroup.subtree_control")) ?? "").split(/\s+/);
    const ok = (c: string): string | null => {
      if (!enabled.includes(c)) {
        notes.push(`cgroup v2: controller ${c} is not enabled in ${base}/cgroup.subtree_control`);
        return null;
      }
      if (!f.writable(base)) {
        notes.push(`cgroup v2: ${base} is not writable`);
        return null;
      }
      return base;
    };
    return { version: "v2", pidsParent: ok("pids"), memoryParent: ok("memory"), notes };
  }
  const v1 = (controller: string): string | null => {
    const mount = join(f.root, controller);
    if (f.read(join(mount, "cgroup.procs")) === null) {
      notes.push(`cgroup v1: no ${controller} controller mounted at ${mount}`);
      return null;
    }
    const dir = join(mount, own.get(controller) ?? "/");
    if (!f.writable(dir)) {
      notes.push(`cgroup v1: ${dir} is not writable`);
      return null;
    }
    return dir;
  };
  const pidsParent = v1("pids");
  const memoryParent = v1("memory");
  const version = pidsParent || memoryParent ? "v1" : "none";
  return { version, pidsParent, memoryParent, notes };
}

/** Probes this host. */
export function detectCgroups(root = "/sys/fs/cgroup"): CgroupLayout {
  return planCgroups({
    root,
    procSelfCgroup: readOr("/proc/self/cgroup") ?? "",
    read: readOr,
    writable: (dir) => {
      const probe = join(dir, `l0-probe-${process.pid}`);
      try {
        mkdirSync(probe);
        rmdirSync(probe);
        return true;
      } catch {
        return false;
      }
    },
  });
}

function readOr(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

/** One kernel's cgroups: join them via `procs`, read OOM kills, remove after the kernel died. */
export interface KernelCgroup {
  procs: string[];
  oomKills(): number;
  /** SIGKILLs every process inside (v1 has no cgroup.kill). */
  killAll(): void;
  /**
   * Kills what is left inside and removes the directories; resolves to the number of
   * directories that could not be removed (0 when every process is gone).
   */
  destroy(): Promise<number>;
}

function killCgroup(dir: string): void {
  for (const pid of (readOr(join(dir, "cgroup.procs")) ?? "").split("\n").filter(Boolean)) {
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

export function createKernelCgroup(
  layout: CgroupLayout,
  name: string,
  limits: { processes: number; memoryBytes: number },
): KernelCgroup {
  const dirs: string[] = [];
  let memDir: string | null = null;
  try {
    if (layout.pidsParent) {
      const d = join(layout.pidsParent, name);
      mkdirSync(d);
      dirs.push(d);
      writeFileSync(join(d, "pids.max"), String(limits.processes));
    }
    if (layout.memoryParent && layout.memoryParent !== layout.pidsParent) {
      const d = join(layout.memoryParent, name);
      mkdirSync(d);
      dirs.push(d);
      memDir = d;
    } else if (layout.memoryParent) memDir = dirs[0] ?? null;
    if (memDir) {
      // Memory + a little slack over RLIMIT_AS: the rlimit is the clean MemoryError, the cgroup the backstop.
      const limit = String(limits.memoryBytes + (64 << 20));
      writeFileSync(join(memDir, layout.version === "v2" ? "memory.max" : "memory.limit_in_bytes"), limit);
      if (layout.version === "v1") {
        try {
          writeFileSync(join(memDir, "memory.memsw.limit_in_bytes"), limit);
        } catch {
          // Swap accounting off: the memory limit alone still holds.
        }
      } else writeFileSync(join(memDir, "memory.swap.max"), "0");
    }
  } catch (err) {
    for (const d of dirs.reverse()) void removeDir(d);
    throw err;
  }
  return {
    procs: dirs.map((d) => join(d, "cgroup.procs")),
    oomKills: () => {
      if (!memDir) return 0;
      const file = layout.version === "v2" ? "memory.events" : "memory.oom_control";
      const m = /oom_kill (\d+)/.exec(readOr(join(memDir, file)) ?? "");
      return m ? Number(m[1]) : 0;
    },
    killAll: () => dirs.forEach(killCgroup),
    destroy: async () => {
      let left = 0;
      for (const d of dirs) if (!(await removeDir(d))) left++;
      return left;
    },
  };
}

/**
 * Removes a kernel's cgroup, killing what is inside first. A cgroup can only be removed once its
 * last process has been reaped, so it retries for a while (killing again: a fork in flight).
 */
async function removeDir(d: string): Promise<boolean> {
  for (let i = 0; i < 100 && existsSync(d); i++) {
    killCgroup(d);
    try {
      rmdirSync(d);
      return true;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return !existsSync(d);
}

/** This process's pid namespace (the inode of /proc/self/ns/pid), "0" when unreadable. */
export function pidNamespace(): string {
  try {
    return /\[(\d+)\]/.exec(readlinkSync("/proc/self/ns/pid"))?.[1] ?? "0";
  } catch {
    return "0";
  }
}

/**
 * What names a worker's kernels' cgroups and its private directory: its pid and its pid
 * namespace, `<pid>n<inode>`. A pid means nothing outside its namespace (a worker in a container
 * or a test's own namespace cannot see another's), so only names of the sweeper's own namespace
 * are ever judged stale; names without the tag (older workers, tests) never are.
 */
export const ownerTag = (pid = process.pid, ns = pidNamespace()): string => `${pid}n${ns}`;

/** Per-kernel cgroup names: `l0-<kind>-<pid>n<pid namespace>-…`. */
const KERNEL_CGROUP = /^l0-[a-z]+-(\d+)n(\d+)-/;

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes per-kernel cgroups left behind by worker processes that no longer exist (killed
 * with SIGKILL, crashed). Their kernels should have died with them (--die-with-parent); any
 * process still inside is killed first, so nothing of a dead worker's kernels survives a restart.
 */
export function sweepStaleCgroups(
  layout: CgroupLayout,
  alive: (pid: number) => boolean = processAlive,
  ns = pidNamespace(),
): string[] {
  const removed: string[] = [];
  for (const parent of new Set([layout.pidsParent, layout.memoryParent])) {
    if (!parent) continue;
    let entries: string[];
    try {
      entries = readdirSync(parent);
    } catch {
      continue;
    }
    for (const name of entries) {
      const m = KERNEL_CGROUP.exec(name);
      if (!m || m[2] !== ns || Number(m[1]) === process.pid || alive(Number(m[1]))) continue;
      const dir = join(parent, name);
      // Killed processes are reaped by whoever inherited them; wait a little for that.
      for (let i = 0; i < 20; i++) {
        killCgroup(dir);
        try {
          rmdirSync(dir);
          removed.push(dir);
          break;
        } catch {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
        }
      }
    }
  }
  return removed;
}
