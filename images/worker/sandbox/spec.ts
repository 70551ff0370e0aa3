// The sandbox spec: what one kernel's jail looks like (binds, limits, uid, cgroups), validated
// before any process is built from it. Pure; the host facts (cgroup paths, our uid) come in as data.
import { type FieldViolation, invalidFields } from "../../../lib/errors.js";

/** `strict` fails closed without a pids cgroup; `weak` runs with rlimits only and says so loudly. */
export type SandboxMode = "strict" | "weak";

export interface SandboxLimits {
  /** RLIMIT_CPU of the whole kernel (all its cells), seconds. */
  cpuSeconds: number;
  /** RLIMIT_AS, bytes. Also the memory cgroup's limit when one is available. */
  memoryBytes: number;
  /** RLIMIT_FSIZE, bytes: largest file the kernel may write. */
  fileSizeBytes: number;
  /** RLIMIT_NOFILE. */
  openFiles: number;
  /** pids.max of the kernel's cgroup; also RLIMIT_NPROC of its private uid. */
  processes: number;
  /** Size of the private tmpfs at /tmp (the working directory), bytes. */
  workdirBytes: number;
}

export interface SandboxSpec {
  mode: SandboxMode;
  bwrap: string;
  setpriv: string;
  python: string;
  /** Host path of kernel.py; bound read-only at KERNEL_PATH_IN_SANDBOX, the only worker file inside. */
  kernelPath: string;
  /** Read-only binds besides /usr (library dirs). Never "/" or anything holding secrets. */
  roBinds: string[];
  limits: SandboxLimits;
  /** The non-root uid/gid the kernel runs as (the worker drops to it when it runs as root). */
  uid: number;
  gid: number;
  /** The worker's own uid: root must drop privileges through setpriv, a non-root worker already has. */
  hostUid: number;
  /** cgroup.procs files the kernel joins before exec (pids and memory); empty only in weak mode. */
  cgroupProcs: string[];
  /**
   * Host path of the compiled seccomp filter (seccomp_filter.py's BPF), handed to bwrap as fd
   * SECCOMP_FD; null only in weak mode on a host without libseccomp.
   */
  seccomp: string | null;
  /**
   * RLIMIT_NPROC. It counts every process and thread of the uid: with a uid per kernel it equals
   * limits.processes; when kernels share the worker's uid it can only be a ceiling for all of them.
   */
  nproc: number;
}

export const KERNEL_PATH_IN_SANDBOX = "/opt/l0/kernel.py";
export const WORKDIR_IN_SANDBOX = "/tmp";

/** Paths no spec may bind: the whole host, or places that hold credentials and host state. */
const FORBIDDEN_BINDS = ["/", "/etc", "/root", "/home", "/proc", "/sys", "/var/run", "/run", "/work"];

function isAbsoluteClean(p: string): boolean {
  return p.startsWith("/") && !p.split("/").includes("..") && !p.includes("\0");
}

/** Every problem with a spec, each naming its field; empty when the spec is usable. */
export function specViolations(s: SandboxSpec): FieldViolation[] {
  const v: FieldViolation[] = [];
  const need = (ok: boolean, field: string, description: string): void => {
    if (!ok) v.push({ field, description });
  };
  need(s.mode === "strict" || s.mode === "weak", "mode", "must be strict or weak");
  for (const key of ["bwrap", "setpriv", "python", "kernelPath"] as const)
    need(isAbsoluteClean(s[key]), key, `must be an absolute path, got ${JSON.stringify(s[key])}`);
  need(
    s.seccomp === null || isAbsoluteClean(s.seccomp),
    "seccomp",
    `must be an absolute path or null, got ${JSON.stringify(s.seccomp)}`,
  );
  need(
    s.mode === "weak" || s.seccomp !== null,
    "seccomp",
    "strict mode needs the seccomp filter (install python3-seccomp); choose mode weak explicitly to run without",
  );
  s.roBinds.forEach((b, i) => {
    need(isAbsoluteClean(b), `roBinds[${i}]`, `must be an absolute path, got ${JSON.stringify(b)}`);
    const norm = b.replace(/\/+$/, "") || "/";
    need(!FORBIDDEN_BINDS.includes(norm), `roBinds[${i}]`, `must not expose ${norm}`);
  });
  const positive: (keyof SandboxLimits)[] = [
    "cpuSeconds",
    "memoryBytes",
    "fileSizeBytes",
    "openFiles",
    "processes",
    "workdirBytes",
  ];
  for (const k of positive)
    need(
      Number.isInteger(s.limits[k]) && s.limits[k] > 0,
      `limits.${k}`,
      `must be a positive integer, got ${s.limits[k]}`,
    );
  need(
    Number.isInteger(s.nproc) && s.nproc >= s.limits.processes,
    "nproc",
    `must be an integer >= limits.processes, got ${s.nproc}`,
  );
  need(s.limits.openFiles >= 16, "limits.openFiles", "must be at least 16 (Python needs a few)");
  need(s.limits.memoryBytes >= 64 << 20, "limits.memoryBytes", "must be at least 64 MiB (Python needs it)");
  need(Number.isInteger(s.uid) && s.uid > 0, "uid", `must be a non-root uid, got ${s.uid}`);
  need(Number.isInteger(s.gid) && s.gid > 0, "gid", `must be a non-root gid, got ${s.gid}`);
  need(
    s.hostUid === 0 || s.hostUid === s.uid,
    "uid",
    `a non-root worker (uid ${s.hostUid}) cannot switch to uid ${s.uid}; set it to ${s.hostUid}`,
  );
  need(
    s.mode === "weak" || s.cgroupProcs.length > 0,
    "cgroupProcs",
    "strict mode needs a pids cgroup (none is available); choose mode weak explicitly to run without",
  );
  s.cgroupProcs.forEach((p, i) =>
    need(
      isAbsoluteClean(p) && p.startsWith("/sys/fs/cgroup/") && p.endsWith("/cgroup.procs"),
      `cgroupProcs[${i}]`,
      `must be a cgroup.procs file under /sys/fs/cgroup, got ${JSON.stringify(p)}`,
    ),
  );
  return v;
}

/** Throws an InvalidArgument error naming every bad field: the sandbox fails closed. */
export function assertValidSpec(s: SandboxSpec): void {
  const v = specViolations(s);
  if (v.length > 0) throw invalidFields(v.map((x) => ({ ...x, field: `sandbox.${x.field}` })));
}
