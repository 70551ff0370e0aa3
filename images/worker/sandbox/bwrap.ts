// The kernel's command line, built purely from a validated spec (snapshot-tested): raise the
// kernel's OOM score, join its cgroups, drop to its non-root uid, then bwrap with every namespace
// unshared and nested user namespaces off, a seccomp filter, a read-only /usr, size-capped private
// tmpfs mounts, a cleared environment, and Python under rlimits.
import { KERNEL_PATH_IN_SANDBOX, WORKDIR_IN_SANDBOX, type SandboxSpec, assertValidSpec } from "./spec.js";

/** The only variables a kernel sees. Nothing of the worker's (tokens, keys) is ever passed. */
export const SANDBOX_ENV: Readonly<Record<string, string>> = {
  PATH: "/usr/local/bin:/usr/bin:/bin",
  HOME: WORKDIR_IN_SANDBOX,
  TMPDIR: WORKDIR_IN_SANDBOX,
  LANG: "C.UTF-8",
  PYTHONDONTWRITEBYTECODE: "1",
  PYTHONUNBUFFERED: "1",
  OPENBLAS_NUM_THREADS: "1",
  OMP_NUM_THREADS: "1",
  MPLBACKEND: "Agg",
  // glibc gives each thread a malloc arena of 64 MiB of address space: under RLIMIT_AS a handful
  // of threads used it up, and CPython then waited forever for a thread that could not start.
  MALLOC_ARENA_MAX: "2",
};

/**
 * Runs first in every kernel, whatever the mode: raises the process's oom_score_adj to 1000 so
 * that when memory runs out the kernel's processes, which inherit it, are the OOM killer's first
 * choice and the worker is not (exit 98 if that fails), then joins each cgroup.procs file given
 * before `--` (exit 97 if one cannot be joined, so a missing limit never goes unnoticed) and
 * execs the rest. Joining before exec means every process the kernel forks is born inside.
 * A root worker writes oom_score_adj with CAP_SYS_RESOURCE, which also pins its floor there.
 */
export const KERNEL_OOM_SCORE_ADJ = 1000;
export const CGROUP_JOIN_EXIT = 97;
export const OOM_ADJ_EXIT = 98;
const PRELUDE =
  `echo ${KERNEL_OOM_SCORE_ADJ} > /proc/self/oom_score_adj || exit ${OOM_ADJ_EXIT}; ` +
  `while [ "$1" != -- ]; do echo $$ > "$1" || exit ${CGROUP_JOIN_EXIT}; shift; done; shift; exec "$@"`;

/** The descriptor the kernel's spawn passes the seccomp filter on (stdio index 3). */
export const SECCOMP_FD = 3;

/**
 * A small tmpfs of its own for the kernel's capture of child-process output (fd 1 and 2), so a
 * cell that fills /tmp does not lose what its children print. kernel.py writes there.
 */
export const OUTPUT_DIR_IN_SANDBOX = "/run/l0";
export const OUTPUT_TMPFS_BYTES = 8 << 20;

/** /dev/shm gets a quarter of the workdir's size (at least 1 MiB). */
export const shmBytes = (workdirBytes: number): number => Math.max(1 << 20, Math.floor(workdirBytes / 4));

/** /proc, /dev, the size-capped tmpfs mounts and kernel.py, then what is remounted read-only. */
function mounts(spec: SandboxSpec): string[] {
  const { workdirBytes } = spec.limits;
  return [
    ...["--proc", "/proc", "--dev", "/dev"],
    ...["--size", String(shmBytes(workdirBytes)), "--tmpfs", "/dev/shm"],
    ...["--size", String(workdirBytes), "--tmpfs", WORKDIR_IN_SANDBOX],
    ...["--size", String(OUTPUT_TMPFS_BYTES), "--tmpfs", OUTPUT_DIR_IN_SANDBOX],
    ...["--ro-bind", spec.kernelPath, KERNEL_PATH_IN_SANDBOX],
    // bwrap's own root and /dev are tmpfs without a size cap: read-only, so the capped /tmp
    // (and a small /dev/shm for multiprocessing) are the only places agent code can write.
    // /proc read-only: agent code cannot lower the oom_score_adj the prelude set.
    ...["--remount-ro", "/dev", "--remount-ro", "/proc", "--remount-ro", "/"],
  ];
}

export interface Command {
  file: string;
  args: string[];
}

export function bwrapArgs(spec: SandboxSpec): Command {
  assertValidSpec(spec);
  const { limits } = spec;
  const bwrap: string[] = [
    spec.bwrap,
    "--unshare-all",
    // Explicit, so that --disable-userns can forbid nested user namespaces (and with them any
    // capability inside the sandbox).
    "--unshare-user",
    "--disable-userns",
    "--die-with-parent",
    "--new-session",
    "--clearenv",
    "--cap-drop",
    "ALL",
    "--hostname",
    "sandbox",
  ];
  if (spec.seccomp) bwrap.push("--seccomp", String(SECCOMP_FD));
  for (const [k, v] of Object.entries(SANDBOX_ENV)) bwrap.push("--setenv", k, v);
  bwrap.push("--ro-bind", "/usr", "/usr");
  for (const d of ["bin", "lib", "lib64", "sbin"]) bwrap.push("--symlink", `usr/${d}`, `/${d}`);
  for (const b of spec.roBinds) bwrap.push("--ro-bind-try", b, b);
  bwrap.push(
    ...mounts(spec),
    "--chdir",
    WORKDIR_IN_SANDBOX,
    "--",
    spec.python,
    "-I",
    "-B",
    KERNEL_PATH_IN_SANDBOX,
  );
  bwrap.push("--as", String(limits.memoryBytes), "--cpu", String(limits.cpuSeconds));
  bwrap.push("--fsize", String(limits.fileSizeBytes), "--nofile", String(limits.openFiles));
  bwrap.push("--nproc", String(spec.nproc));
  const drop =
    spec.hostUid === 0
      ? [
          spec.setpriv,
          `--reuid=${spec.uid}`,
          `--regid=${spec.gid}`,
          "--clear-groups",
          "--no-new-privs",
          "--bounding-set=-all",
          "--inh-caps=-all",
        ]
      : [];
  return {
    file: "/bin/sh",
    args: ["-c", PRELUDE, "l0-kernel", ...spec.cgroupProcs, "--", ...drop, ...bwrap],
  };
}
