// What the worker process does so that nothing of its own reaches a kernel or outlives it: one
// private directory (the staged kernel script, the compiled seccomp filter), removed at exit and
// swept after a crash, and the descriptors it inherited from whoever started it, closed.
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ownerTag, pidNamespace, processAlive } from "./cgroup.js";

const DIR_PREFIX = "l0-kernel-";
/** `l0-kernel-<worker pid>n<its pid namespace>-XXXXXX` (mkdtemp's random suffix). */
const WORKER_DIR = /^l0-kernel-(\d+)n(\d+)-[A-Za-z0-9]{6}$/;

let current: string | null = null;

/**
 * This process's private directory, world-readable (kernels of other uids open the staged
 * script) with a random name nobody can pre-create. Made once, removed when the process exits.
 */
export function workerDir(): string {
  if (current && existsSync(current)) return current;
  const dir = mkdtempSync(join(tmpdir(), `${DIR_PREFIX}${ownerTag()}-`));
  chmodSync(dir, 0o755);
  current = dir;
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Removes the private directories of workers that no longer exist (SIGKILL skips the exit
 * hook): only those of this pid namespace (a pid elsewhere means nothing here) that this uid
 * owns. Returns what it removed.
 */
export function sweepStaleWorkerDirs(
  root = tmpdir(),
  alive: (pid: number) => boolean = processAlive,
  ns = pidNamespace(),
): string[] {
  const uid = process.getuid?.() ?? 0;
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = WORKER_DIR.exec(name);
    if (!m || m[2] !== ns || Number(m[1]) === process.pid || alive(Number(m[1]))) continue;
    const path = join(root, name);
    try {
      if (statSync(path).uid !== uid) continue;
      rmSync(path, { recursive: true, force: true });
      removed.push(path);
    } catch {
      // Gone meanwhile, or not ours.
    }
  }
  return removed;
}

/**
 * Kernels run as other, non-root uids, and bwrap (started after setpriv drops the uid) opens the
 * kernel script as that uid: every directory above it must be searchable by others, which a
 * checkout under a private directory is not. A root worker copies it into its private directory.
 */
export function stageKernelScript(src: string): string {
  const dest = join(workerDir(), "kernel.py");
  if (!existsSync(dest)) {
    copyFileSync(src, dest);
    chmodSync(dest, 0o444);
  }
  return dest;
}

/** Writes the compiled seccomp filter into the private directory (once) and returns its path. */
export function stageSeccompFilter(bpf: Buffer): string {
  const dest = join(workerDir(), "seccomp.bpf");
  if (!existsSync(dest)) writeFileSync(dest, bpf, { mode: 0o444 });
  return dest;
}

const O_CLOEXEC = 0o2000000;

/**
 * Descriptors a child process would inherit: above stderr and open without O_CLOEXEC. Node opens
 * everything of its own close-on-exec, so these came from whoever started the worker (a token
 * file a wrapper left open, a shell's descriptors). Pure over /proc/self/fdinfo contents.
 */
export function inheritableFds(fdinfo: ReadonlyMap<number, string>): number[] {
  const out: number[] = [];
  for (const [fd, text] of fdinfo) {
    const m = /^flags:\s+([0-7]+)$/m.exec(text);
    if (fd > 2 && m && (parseInt(m[1]!, 8) & O_CLOEXEC) === 0) out.push(fd);
  }
  return out.sort((a, b) => a - b);
}

/** Closes what `inheritableFds` finds in this process, so no kernel can inherit it; returns them. */
export function closeInheritedDescriptors(): number[] {
  const info = new Map<number, string>();
  let fds: string[];
  try {
    fds = readdirSync("/proc/self/fdinfo");
  } catch {
    return [];
  }
  for (const name of fds) {
    try {
      info.set(Number(name), readFileSync(`/proc/self/fdinfo/${name}`, "utf8"));
    } catch {
      // Closed meanwhile (the directory listing's own descriptor).
    }
  }
  const closed = inheritableFds(info);
  for (const fd of closed) {
    try {
      closeSync(fd);
    } catch {
      // Already closed.
    }
  }
  return closed;
}
