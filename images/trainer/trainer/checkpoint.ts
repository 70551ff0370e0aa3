// The loop's consistent checkpoints: one directory per saved step holding the learner's Save
// (`learner/`) and the hub's state (`hub-state.json`), a `COMPLETE` marker written last, and a
// `latest` pointer replaced atomically. Resume takes the newest complete directory, so a crash in
// the middle of a save leaves the previous checkpoint in charge.
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";

export const POINTER = "latest";
/** The run's history (one JSON record per step and evaluation), beside the step directories. */
export const HISTORY_FILE = "history.jsonl";
export const MARKER = "COMPLETE";
const STEP_DIR = /^step-(\d{6,})$/;

/** Pure: the directory name of a step's checkpoint. */
export const stepDirName = (step: number): string => `step-${String(step).padStart(6, "0")}`;

export interface SavedStep {
  step: number;
  dir: string;
}

/** Pure: the steps of the complete checkpoint directories among `names`, newest first. */
export function completeSteps(names: readonly string[], isComplete: (name: string) => boolean): number[] {
  return names
    .flatMap((n) => {
      const m = STEP_DIR.exec(n);
      return m && isComplete(n) ? [Number(m[1])] : [];
    })
    .sort((a, b) => b - a);
}

/**
 * Pure: which complete steps to delete once `committed` is saved, so `keep` remain: never the one
 * just committed, and every step after it (left by an abandoned attempt, e.g. a run restarted
 * with spec.checkpoint.resume false, or one resumed from an older checkpoint: their history was
 * replaced, and leaving them would make a later resume pick them up).
 */
export function toPrune(steps: readonly number[], keep: number, committed: number): number[] {
  const after = steps.filter((s) => s > committed);
  const upTo = steps.filter((s) => s <= committed).sort((a, b) => b - a);
  return [...after.sort((a, b) => b - a), ...upTo.slice(Math.max(1, keep))];
}

const complete = (root: string) => (name: string) => existsSync(join(root, name, MARKER));

/** The checkpoint to resume from: the `latest` pointer if it is complete, else the newest complete one. */
export function findLatest(root: string): SavedStep | null {
  if (!existsSync(root)) return null;
  try {
    const name = readFileSync(join(root, POINTER), "utf8").trim();
    const m = STEP_DIR.exec(name);
    if (m && complete(root)(name)) return { step: Number(m[1]), dir: join(root, name) };
  } catch {
    // no pointer yet, or unreadable: fall back to scanning
  }
  const [step] = completeSteps(readdirSync(root), complete(root));
  return step === undefined ? null : { step, dir: join(root, stepDirName(step)) };
}

/** Prepares an empty directory for step `step` (a leftover incomplete one is removed). */
export function beginSave(root: string, step: number): string {
  const dir = join(root, stepDirName(step));
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Marks `dir` complete, points `latest` at it (temp + rename + fsync), and prunes old steps. */
export function commitSave(root: string, step: number, keep: number): number[] {
  const name = stepDirName(step);
  writeDurable(join(root, name, MARKER), `${new Date().toISOString()}\n`);
  const tmp = join(root, `.${POINTER}.tmp`);
  writeDurable(tmp, name + "\n");
  renameSync(tmp, join(root, POINTER));
  syncDir(root);
  const pruned = toPrune(completeSteps(readdirSync(root), complete(root)), keep, step);
  for (const s of pruned) rmSync(join(root, stepDirName(s)), { recursive: true, force: true });
  return pruned;
}

function writeDurable(path: string, text: string): void {
  writeFileSync(path, text);
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function syncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
