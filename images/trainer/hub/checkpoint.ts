// The hub's resumable state (dataset position, questions in flight, step, policy version,
// counters) as one JSON file, written atomically: temp file + fsync + rename + fsync of the
// directory, so a crash leaves either the old file or the new one, never a torn one.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { L0Error } from "../../../lib/errors.js";
import { type Cursor } from "./dataset.js";
import { type LastEvaluation } from "./evaluation.js";

export const CHECKPOINT_FORMAT = "l0-hub-checkpoint/v1";
export const CHECKPOINT_FILE = "hub-state.json";

export interface HubCheckpoint {
  format: typeof CHECKPOINT_FORMAT;
  savedAtUnixMs: number;
  /** Steps whose batch was served. */
  step: number;
  policyVersion: number;
  cursor: Cursor;
  /** Question indices drawn but not yet served in a batch: re-issued first on resume. */
  pending: number[];
  groupSeq: number;
  totals: { completed: number; failed: number; retried: number; groupsDropped: number; stale: number };
  rewardMean: number;
  /** The last finished evaluation (absent from a checkpoint written before it was kept: null). */
  evaluation: LastEvaluation | null;
  dataset: { path: string; size: number };
}

export function checkpointPath(stateDir: string): string {
  return join(stateDir, CHECKPOINT_FILE);
}

export function writeCheckpoint(path: string, cp: HubCheckpoint): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeSync(fd, JSON.stringify(cp, null, 1) + "\n");
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dir = openSync(dirname(path), "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/** Reads a checkpoint; null when there is none yet. A corrupt file is an error naming it. */
export function readCheckpoint(path: string): HubCheckpoint | null {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new L0Error("Internal", `${path}: cannot read hub checkpoint: ${(err as Error).message}`);
  }
  let cp: Partial<HubCheckpoint>;
  try {
    cp = JSON.parse(text) as Partial<HubCheckpoint>;
  } catch (err) {
    throw new L0Error(
      "FailedPrecondition",
      `${path}: hub checkpoint is not valid JSON: ${(err as Error).message}`,
    );
  }
  const bad = (field: string): never => {
    throw new L0Error("FailedPrecondition", `${path}: hub checkpoint field ${field} is missing or invalid`);
  };
  if (cp.format !== CHECKPOINT_FORMAT) bad("format");
  for (const k of ["step", "policyVersion", "groupSeq"] as const) if (!Number.isInteger(cp[k])) bad(k);
  if (!cp.cursor || !Number.isInteger(cp.cursor.epoch) || !Number.isInteger(cp.cursor.position))
    bad("cursor");
  if (!Array.isArray(cp.pending) || !cp.pending.every((x) => Number.isInteger(x))) bad("pending");
  if (!cp.totals) bad("totals");
  return { ...cp, evaluation: cp.evaluation ?? olderEvaluation(cp) } as HubCheckpoint;
}

/**
 * Older checkpoints kept only the accuracy (`evalAccuracy`), not the step it was measured at: it
 * is carried over at the checkpoint's step (the evaluation ran at or before it), so a resumed
 * run's status keeps its figure instead of dropping to none until the next evaluation.
 */
function olderEvaluation(cp: Partial<HubCheckpoint> & { evalAccuracy?: unknown }): LastEvaluation | null {
  const a = cp.evalAccuracy;
  return typeof a === "number" && a >= 0 && a <= 1 ? { step: cp.step!, accuracy: a, judge: null } : null;
}
