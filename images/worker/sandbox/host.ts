// Host side of the sandbox: checks what this machine offers (bwrap, setpriv, cgroups, libseccomp),
// decides once whether kernels can run in the chosen mode (fails closed in strict mode), and makes
// the per-kernel spec, each kernel with its own non-root uid where the worker is root.
import { accessSync, constants, existsSync } from "node:fs";
import { release } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { L0Error } from "../../../lib/errors.js";
import { type Logger } from "../../../lib/log.js";
import { type CgroupLayout, detectCgroups, sweepStaleCgroups } from "./cgroup.js";
import {
  closeInheritedDescriptors,
  stageKernelScript,
  stageSeccompFilter,
  sweepStaleWorkerDirs,
} from "./hygiene.js";
import { compileSeccompFilter, seccompScriptPath } from "./seccomp.js";
import { type SandboxLimits, type SandboxMode, type SandboxSpec } from "./spec.js";

export interface SandboxSettings {
  mode: SandboxMode;
  limits: SandboxLimits;
  /** First uid of the range kernels run as; kernel n gets uidBase + n mod uidRange. */
  uidBase: number;
  uidRange: number;
  /** Most kernels alive at once (warm + running); sizes the shared RLIMIT_NPROC of a non-root worker. */
  maxKernels?: number;
  bwrap?: string;
  setpriv?: string;
  python?: string;
  roBinds?: string[];
}

/** Library dirs outside /usr some Python packages need (alternatives symlinks, the loader cache). */
export const DEFAULT_RO_BINDS = ["/etc/alternatives", "/etc/ld.so.cache"];

export function kernelScriptPath(): string {
  // images/worker/sandbox/ in a checkout or dist/images/worker/sandbox/ in an image; the .py is
  // not compiled, so look for it beside the sources first, then in the checkout layout.
  const here = dirname(fileURLToPath(import.meta.url));
  const beside = join(here, "..", "kernel", "kernel.py");
  if (existsSync(beside) || !here.includes("/dist/")) return beside;
  return join(here.slice(0, here.lastIndexOf("/dist/")), "images", "worker", "kernel", "kernel.py");
}

export interface SandboxHost {
  cgroups: CgroupLayout;
  specFor(seq: number): SandboxSpec;
  /** Human-readable weaknesses of this host's sandbox (empty in a complete strict setup). */
  weaknesses: string[];
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Probes the host; throws FailedPrecondition when strict mode cannot be honoured. */
export function prepareSandbox(s: SandboxSettings, logger: Logger, cgroups = detectCgroups()): SandboxHost {
  const bwrap = s.bwrap ?? "/usr/bin/bwrap";
  const setpriv = s.setpriv ?? "/usr/bin/setpriv";
  const python = s.python ?? "/usr/bin/python3";
  const hostUid = process.getuid?.() ?? 0;
  const missing = [bwrap, python, ...(hostUid === 0 ? [setpriv] : [])].filter((p) => !executable(p));
  if (missing.length > 0)
    throw new L0Error("FailedPrecondition", `sandbox: missing ${missing.join(", ")}; kernels cannot run`);
  const weaknesses = [...cgroups.notes];
  if (!cgroups.pidsParent) {
    if (s.mode === "strict")
      throw new L0Error(
        "FailedPrecondition",
        `sandbox: no writable pids cgroup (${cgroups.notes.join("; ")}); strict mode fails closed. ` +
          "Run the worker with cgroup access or choose --sandbox-mode weak explicitly.",
      );
    weaknesses.push(
      perUsernsNproc(release())
        ? "no pids cgroup: processes are bounded by RLIMIT_NPROC in each kernel's own user namespace"
        : "no pids cgroup and a Linux older than 5.14: RLIMIT_NPROC is shared by every kernel of the uid",
    );
  }
  if (!cgroups.memoryParent) weaknesses.push("no memory cgroup: memory is bounded by RLIMIT_AS only");
  if (hostUid !== 0) weaknesses.push(`worker runs as uid ${hostUid}: every kernel runs as that uid too`);
  // bwrap exits just before the sandbox's init when a kernel ends by itself; the orphan goes to
  // PID 1, which Node never reaps (the worker image runs tini as PID 1 for this).
  if (process.pid === 1)
    weaknesses.push("the worker is PID 1: kernels that end by themselves leave zombies; run it under tini");
  const seccomp = seccompFilterFor(s.mode, python, weaknesses);
  if (weaknesses.length > 0)
    logger.warn("SANDBOX IS WEAKER THAN STRICT", { mode: s.mode, weaknesses, cgroup: cgroups.version });
  const closed = closeInheritedDescriptors();
  if (closed.length > 0) logger.info("closed inherited descriptors so no kernel gets them", { fds: closed });
  const stale = sweepStaleCgroups(cgroups);
  if (stale.length > 0) logger.info("removed cgroups of kernels from dead workers", { count: stale.length });
  const dirs = sweepStaleWorkerDirs();
  if (dirs.length > 0) logger.info("removed directories of dead workers", { count: dirs.length });
  const kernelPath = hostUid === 0 ? stageKernelScript(kernelScriptPath()) : kernelScriptPath();
  const nproc = nprocFor(s, hostUid, release());
  return {
    cgroups,
    weaknesses,
    specFor: (seq) => {
      const uid = hostUid === 0 ? s.uidBase + (seq % s.uidRange) : hostUid;
      return {
        mode: s.mode,
        bwrap,
        setpriv,
        python,
        kernelPath,
        roBinds: s.roBinds ?? DEFAULT_RO_BINDS,
        limits: s.limits,
        uid,
        gid: uid,
        hostUid,
        cgroupProcs: [],
        seccomp,
        nproc,
      };
    },
  };
}

/** The compiled filter's path; strict mode fails closed without one, weak mode notes it. */
function seccompFilterFor(mode: SandboxMode, python: string, weaknesses: string[]): string | null {
  try {
    return stageSeccompFilter(compileSeccompFilter(python, seccompScriptPath(kernelScriptPath())));
  } catch (err) {
    if (mode === "strict") throw err;
    weaknesses.push(`no seccomp filter: ${(err as Error).message}`);
    return null;
  }
}

/**
 * Since Linux 5.14 RLIMIT_NPROC is counted per user namespace (ucounts), and every kernel has
 * its own (bwrap --unshare-user): the limit then binds each kernel separately even when all of
 * them share the worker's uid. Pure over `uname -r`.
 */
export function perUsernsNproc(kernelRelease: string): boolean {
  const m = /^(\d+)\.(\d+)/.exec(kernelRelease);
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > 5 || (major === 5 && minor >= 14);
}

/**
 * RLIMIT_NPROC of a kernel: its process limit where the count is per kernel (its own uid, or its
 * own user namespace on Linux >= 5.14); on older kernels a shared uid counts every kernel and the
 * worker's threads together, so the limit can only be a ceiling for all of them.
 */
export function nprocFor(
  s: Pick<SandboxSettings, "limits" | "maxKernels">,
  hostUid: number,
  kernelRelease: string,
): number {
  if (hostUid === 0 || perUsernsNproc(kernelRelease)) return s.limits.processes;
  return s.limits.processes * (s.maxKernels ?? 64) + 256;
}
