// Policy version numbers are never reused within a run. With separate inference engines a version
// is the engines' only name for a set of weights (a sidecar never loads a number twice), but a
// trainer restarted from an older checkpoint would train and export the same numbers again with
// other weights. So a restarted learner starts (`--min-version`) above the highest version the
// trainer recorded as published (in the checkpoint directory), above any export left on disk,
// and above any version the running engines report holding: the first two are lost with the pod
// when those directories are emptyDirs, the engines are not.
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type WeightsHubHook } from "../weights/engines.js";

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
export function minVersion(root: string, exportDir: string, enginesHold = 0): number {
  return Math.max(readPublished(root), highestExport(exportDir), enginesHold) + 1;
}

/**
 * The highest version the engines report holding (served, or being pulled), after waiting until
 * `replicas` engines have reported or `waitMs` has passed (sidecars report every few seconds).
 */
export async function enginesHold(
  engines: WeightsHubHook,
  replicas: number,
  waitMs: number,
  signal?: AbortSignal,
): Promise<number> {
  const end = Date.now() + waitMs;
  while (engines.engines().length < replicas && Date.now() < end && !signal?.aborted)
    await new Promise((r) => setTimeout(r, 100));
  return Math.max(0, ...engines.engines().map((e) => Math.max(e.version, e.targetVersion)));
}
