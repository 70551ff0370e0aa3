// Policy version numbers are never reused within a run. With separate inference engines a version
// is the engines' only name for a set of weights (a sidecar never loads a number twice), but a
// trainer restarted from an older checkpoint would train and export the same numbers again with
// other weights. So the trainer records the highest version it publishes (in the checkpoint
// directory, which outlives the pod) and a restarted learner starts above it and above any export
// left on disk (`--min-version`).
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const PUBLISHED_FILE = "published-version";

/** Highest version named by an export directory entry (`<v>/`, or `.<v>.tmp-*` cut short), or 0. */
export function highestExport(dir: string): number {
  if (!existsSync(dir)) return 0;
  let max = 0;
  for (const name of readdirSync(dir)) {
    const m = /^\.?(\d+)(?:$|\.tmp-)/.exec(name);
    if (m) max = Math.max(max, Number(m[1]));
  }
  return max;
}

/** The highest version recorded as published under `root`, or 0 (none, or no root). */
export function readPublished(root: string): number {
  const p = join(root, PUBLISHED_FILE);
  if (!root || !existsSync(p)) return 0;
  const v = Number(readFileSync(p, "utf8").trim());
  return Number.isSafeInteger(v) && v > 0 ? v : 0;
}

/** Records `version` as published (before any engine can see it); atomic. */
export function writePublished(root: string, version: number): void {
  if (!root || version <= readPublished(root)) return;
  const tmp = join(root, `.${PUBLISHED_FILE}.tmp`);
  writeFileSync(tmp, `${version}\n`);
  renameSync(tmp, join(root, PUBLISHED_FILE));
}

/** The version a (re)started learner must start at or above: one more than any it may have published. */
export function minVersion(root: string, exportDir: string): number {
  return Math.max(readPublished(root), highestExport(exportDir)) + 1;
}
