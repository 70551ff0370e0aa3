// The kernels' seccomp filter, compiled once per worker by kernel/seccomp_filter.py (libseccomp
// through Debian's python3-seccomp) into a BPF program that bwrap loads with --seccomp. The rules
// live in that one Python file; this is the thin edge that runs it.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { L0Error } from "../../../lib/errors.js";

/** seccomp_filter.py, beside kernel.py (the .py files are not compiled). */
export const seccompScriptPath = (kernelPath: string): string =>
  join(dirname(kernelPath), "seccomp_filter.py");

const compiled = new Map<string, Buffer>();

/**
 * The BPF program for this machine's architecture; throws FailedPrecondition saying why not.
 * Compiled once per interpreter and script in a process (the rules never change while it runs).
 */
export function compileSeccompFilter(python: string, script: string): Buffer {
  const key = `${python}\0${script}`;
  const done = compiled.get(key);
  if (done) return done;
  const bpf = compile(python, script);
  compiled.set(key, bpf);
  return bpf;
}

function compile(python: string, script: string): Buffer {
  if (!existsSync(script))
    throw new L0Error("FailedPrecondition", `sandbox: seccomp filter generator ${script} is missing`);
  const r = spawnSync(python, ["-I", "-B", script], { env: {}, timeout: 30_000, maxBuffer: 1 << 20 });
  if (r.error)
    throw new L0Error("FailedPrecondition", `sandbox: could not run ${script}: ${r.error.message}`);
  const err = r.stderr.toString("utf8").trim().split("\n").slice(-1)[0] ?? "";
  if (r.status !== 0)
    throw new L0Error(
      "FailedPrecondition",
      `sandbox: the seccomp filter could not be built (${err || `exit ${r.status}`}); ` +
        "install python3-seccomp (libseccomp)",
    );
  // A BPF program is a whole number of 8-byte instructions; anything else is not one.
  if (r.stdout.length === 0 || r.stdout.length % 8 !== 0)
    throw new L0Error(
      "FailedPrecondition",
      `sandbox: the seccomp filter is ${r.stdout.length} bytes, not a BPF program`,
    );
  return r.stdout;
}

export interface SeccompRule {
  syscall: string;
  /** This architecture's number, or negative/null where it has no such syscall. */
  nr: number | null;
  errno: string;
  when: { arg: number; op: string; value: number }[];
  why: string;
}

/** The filter's rules as data (`seccomp_filter.py --list`), for tests and documentation. */
export function seccompRules(python: string, script: string): SeccompRule[] {
  const r = spawnSync(python, ["-I", "-B", script, "--list"], { env: {}, timeout: 30_000 });
  if (r.status !== 0) throw new Error(`seccomp_filter.py --list failed: ${r.stderr.toString("utf8")}`);
  return JSON.parse(r.stdout.toString("utf8")) as SeccompRule[];
}
