// The kernel's command line, built purely from a validated spec (snapshot-tested): join the
// kernel's cgroups, drop to its non-root uid, then bwrap with every namespace unshared, a
// read-only /usr, a size-capped private tmpfs, a cleared environment, and Python under rlimits.
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
};

/**
 * Joins each cgroup.procs file given before `--` (exiting 97 if one cannot be joined, so a
 * missing limit never goes unnoticed), then execs the rest. Joining before exec means every
 * process the kernel ever forks is born inside the cgroup.
 */
const CGROUP_JOIN = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 97; shift; done; shift; exec "$@"';
export const CGROUP_JOIN_EXIT = 97;

/** /dev/shm gets a quarter of the workdir's size (at least 1 MiB). */
export const shmBytes = (workdirBytes: number): number => Math.max(1 << 20, Math.floor(workdirBytes / 4));

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
    "--die-with-parent",
    "--new-session",
    "--clearenv",
    "--cap-drop",
    "ALL",
    "--hostname",
    "sandbox",
  ];
  for (const [k, v] of Object.entries(SANDBOX_ENV)) bwrap.push("--setenv", k, v);
  bwrap.push("--ro-bind", "/usr", "/usr");
  for (const d of ["bin", "lib", "lib64", "sbin"]) bwrap.push("--symlink", `usr/${d}`, `/${d}`);
  for (const b of spec.roBinds) bwrap.push("--ro-bind-try", b, b);
  bwrap.push(
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--size",
    String(shmBytes(limits.workdirBytes)),
    "--tmpfs",
    "/dev/shm",
    "--size",
    String(limits.workdirBytes),
    "--tmpfs",
    WORKDIR_IN_SANDBOX,
    "--ro-bind",
    spec.kernelPath,
    KERNEL_PATH_IN_SANDBOX,
    // bwrap's own root and /dev are tmpfs without a size cap: read-only, so the capped /tmp
    // (and a small /dev/shm for multiprocessing) are the only places agent code can write.
    "--remount-ro",
    "/dev",
    "--remount-ro",
    "/",
    "--chdir",
    WORKDIR_IN_SANDBOX,
    "--",
    spec.python,
    "-I",
    "-B",
    KERNEL_PATH_IN_SANDBOX,
    "--as",
    String(limits.memoryBytes),
    "--cpu",
    String(limits.cpuSeconds),
    "--fsize",
    String(limits.fileSizeBytes),
    "--nofile",
    String(limits.openFiles),
    "--nproc",
    String(spec.nproc),
  );
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
  const inner = [...drop, ...bwrap];
  if (spec.cgroupProcs.length === 0) return { file: inner[0]!, args: inner.slice(1) };
  return {
    file: "/bin/sh",
    args: ["-c", CGROUP_JOIN, "l0-cgroup-join", ...spec.cgroupProcs, "--", ...inner],
  };
}
