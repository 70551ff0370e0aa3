// Host side of the sandbox: checks what this machine offers (bwrap, setpriv, cgroups), decides
// once whether kernels can run in the chosen mode (fails closed in strict mode), and makes the
// per-kernel spec, each kernel with its own non-root uid so RLIMIT_NPROC is per kernel too.
import { accessSync, chmodSync, constants, copyFileSync, existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { L0Error } from "../../../lib/errors.js";
import { type Logger } from "../../../lib/log.js";
import { type CgroupLayout, detectCgroups, sweepStaleCgroups } from "./cgroup.js";
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

// One staged copy per source path and process: the script never changes while a worker runs.
const staged = new Map<string, string>();

/**
 * Kernels run as other, non-root uids, and bwrap (started after setpriv drops the uid) opens the
 * kernel script as that uid: every directory above it must be searchable by others. A checkout
 * under a private directory (mktemp -d, a home directory) is not, so a root worker stages a copy
 * in a fresh world-readable directory of its own (mkdtemp: a random name nobody can pre-create).
 */
export function stageKernelScript(src: string): string {
  const done = staged.get(src);
  if (done && existsSync(done)) return done;
  const dir = mkdtempSync(join(tmpdir(), "l0-kernel-"));
  chmodSync(dir, 0o755);
  const dest = join(dir, "kernel.py");
  copyFileSync(src, dest);
  chmodSync(dest, 0o444);
  staged.set(src, dest);
  return dest;
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
    weaknesses.push("no pids cgroup: process count is bounded by RLIMIT_NPROC of the kernel's uid only");
  }
  if (!cgroups.memoryParent) weaknesses.push("no memory cgroup: memory is bounded by RLIMIT_AS only");
  if (hostUid !== 0)
    weaknesses.push(`worker runs as uid ${hostUid}: every kernel shares it, so RLIMIT_NPROC is shared too`);
  if (weaknesses.length > 0)
    logger.warn("SANDBOX IS WEAKER THAN STRICT", { mode: s.mode, weaknesses, cgroup: cgroups.version });
  const stale = sweepStaleCgroups(cgroups);
  if (stale.length > 0) logger.info("removed cgroups of kernels from dead workers", { count: stale.length });
  const kernelPath = hostUid === 0 ? stageKernelScript(kernelScriptPath()) : kernelScriptPath();
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
        // Shared uid: every kernel's processes plus the worker's own threads count together.
        nproc: hostUid === 0 ? s.limits.processes : s.limits.processes * (s.maxKernels ?? 64) + 256,
      };
    },
  };
}
