// What `l0 local` checks and decides before it starts anything: every input file the run names
// is readable (exit 2 naming the field and path otherwise), and the workers' sandbox mode fits
// this user and machine.
import { accessSync, constants } from "node:fs";
import { type ResolvedTrainingRun } from "../gen/crds/index.js";
import { type FieldViolation, invalidFields } from "../lib/errors.js";
import { detectCgroups } from "../images/worker/sandbox/cgroup.js";
import { inputFiles } from "./plan.js";

/**
 * The workers' sandbox mode: `auto` is strict where this user can write a pids cgroup (root
 * here), else weak: bwrap still unshares every namespace (a user namespace, no network), but
 * kernels run as this uid and processes and memory are bounded by rlimits only.
 */
export function sandboxMode(chosen: "auto" | "strict" | "weak"): { mode: "strict" | "weak"; note?: string } {
  if (chosen !== "auto") return { mode: chosen };
  const cg = detectCgroups();
  if (cg.pidsParent) return { mode: "strict" };
  const uid = process.getuid?.() ?? 0;
  return {
    mode: "weak",
    note:
      `weak (no writable pids cgroup${uid !== 0 ? `; running as uid ${uid}` : ""}): bwrap isolates each kernel ` +
      "(namespaces, no network, seccomp), but not enforced: a uid per kernel, cgroup pids/memory limits " +
      '(rlimits instead); see logs/worker-*.log "SANDBOX IS WEAKER THAN STRICT"',
  };
}

/**
 * Every input file the run names must be readable before anything starts (exit 2 naming it), and
 * a judge key the run names a Secret for must be given as a file (--judge-key-file).
 */
export function checkInputs(run: ResolvedTrainingRun, judgeKeyFile = ""): void {
  const missing: FieldViolation[] = [];
  if (run.spec.evaluation?.judge?.secretRef && !judgeKeyFile)
    missing.push({
      field: "spec.evaluation.judge.secretRef",
      description:
        "names a Secret, which l0 local cannot read: give the key's file with --judge-key-file (L0_LOCAL_JUDGE_KEY_FILE)",
    });
  for (const { field, path } of inputFiles(run)) {
    try {
      accessSync(path, constants.R_OK);
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message;
      missing.push({ field, description: `cannot read ${path}: ${why}` });
    }
  }
  if (missing.length > 0) throw invalidFields(missing);
}
