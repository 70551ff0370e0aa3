// What the benchmarks that run a shipped example through `l0 local` share: the manifest with its
// relative paths made absolute (they are relative to examples/, and the bench writes its variant
// elsewhere), and one run of `l0 local` on a variant, returning its summary.json.
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse, stringify } from "yaml";
import { absolutize } from "../../local/plan.js";
import { type Summary } from "../../local/summary.js";
import { type ResolvedTrainingRun } from "../../gen/crds/index.js";

export const ROOT = resolve(import.meta.dirname, "..", "..");

/** examples/NAME.yaml, its file paths absolute, as a mutable manifest for the bench to vary. */
export function loadExample(name: string): ResolvedTrainingRun {
  const examples = join(ROOT, "examples");
  // Not resolved (no defaults filled in): typed as resolved for the fields the benches set, which
  // every shipped example spells out; `l0 local` resolves the variant it is given.
  const run = parse(readFileSync(join(examples, `${name}.yaml`), "utf8")) as ResolvedTrainingRun;
  return absolutize(run, examples);
}

/**
 * Writes `run` to DIR/NAME.yaml and runs `l0 local` on it in DIR/NAME (progress on this terminal),
 * with `env` added to the environment. Returns the run's summary and the wall time of the whole
 * job, warm start included (the summary's own `seconds` counts the RL session only).
 */
export function runLocal(
  run: ResolvedTrainingRun,
  dir: string,
  name: string,
  env: Record<string, string> = {},
): { summary: Summary; wallSeconds: number } {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, stringify(run));
  const runDir = join(dir, name);
  const started = Date.now();
  const r = spawnSync(
    process.execPath,
    [join(ROOT, "bin", "l0.js"), "local", "-f", file, "--run-dir", runDir, "--progress", "plain"],
    { stdio: ["ignore", "inherit", "inherit"], env: { ...process.env, ...env } },
  );
  if (r.status !== 0) throw new Error(`${name}: l0 local exited with ${r.status ?? r.signal}`);
  const summary = JSON.parse(readFileSync(join(runDir, "summary.json"), "utf8")) as Summary;
  return { summary, wallSeconds: (Date.now() - started) / 1000 };
}
