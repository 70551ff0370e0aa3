// `npm run bench -- multihop`: examples/tiny-multihop.yaml as shipped through `l0 local` (warm start
// on two-turn demonstrations, then RL), reporting held-out accuracy before -> after, the mean number
// of turns and accuracy by turns taken, and the wall time (issue 21's target: +0.20 with at least two
// turns on average, in at most 20 minutes on the 2-core machine).
// L0_BENCH_MULTIHOP_STEPS changes the number of RL steps (default: the manifest's maxSteps).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parse, stringify } from "yaml";
import { type Summary } from "../../local/summary.js";
import { emit, round } from "./stats.js";

const ROOT = resolve(import.meta.dirname, "..", "..");
const run = parse(readFileSync(join(ROOT, "examples", "tiny-multihop.yaml"), "utf8")) as {
  spec: {
    dataset: Record<string, unknown>;
    algorithm: Record<string, unknown>;
    workers: { tools: { search: Record<string, unknown> } };
    warmStart: { path: string };
  };
};
const ex = join(ROOT, "examples");
run.spec.dataset.path = join(ex, String(run.spec.dataset.path));
run.spec.dataset.evalPath = join(ex, String(run.spec.dataset.evalPath));
run.spec.workers.tools.search.corpusPath = join(ex, String(run.spec.workers.tools.search.corpusPath));
run.spec.warmStart.path = join(ex, run.spec.warmStart.path);
if (process.env.L0_BENCH_MULTIHOP_STEPS)
  run.spec.algorithm.maxSteps = Number(process.env.L0_BENCH_MULTIHOP_STEPS);

const dir = mkdtempSync(join(tmpdir(), "l0-bench-multihop-"));
let s: Summary;
try {
  const file = join(dir, "run.yaml");
  writeFileSync(file, stringify(run));
  const runDir = join(dir, "run");
  const started = Date.now();
  const r = spawnSync(
    process.execPath,
    [join(ROOT, "bin", "l0.js"), "local", "-f", file, "--run-dir", runDir, "--progress", "plain"],
    // The learner's torch threads (default 1, the engine and the worker share the cores): 2 here,
    // which halves the warm start on this 2-core machine. Override with L0_LEARNER_THREADS.
    {
      stdio: ["ignore", "inherit", "inherit"],
      env: { ...process.env, L0_LEARNER_THREADS: process.env.L0_LEARNER_THREADS ?? "2" },
    },
  );
  if (r.status !== 0) throw new Error(`l0 local exited with ${r.status}`);
  s = JSON.parse(readFileSync(join(runDir, "summary.json"), "utf8")) as Summary;
  // The whole job, warm start included (summary.seconds counts the RL phase's session).
  s.seconds = (Date.now() - started) / 1000;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const before = s.heldOutBefore;
const after = s.heldOutAfter;
const byTurns = (h: typeof after) =>
  Object.fromEntries(
    Object.entries(h?.byTurns ?? {}).map(([n, b]) => [n, { scored: b.scored, em: round(b.em) }]),
  );
console.log(`held-out accuracy by turns taken, before: ${JSON.stringify(byTurns(before))}`);
console.log(`held-out accuracy by turns taken, after:  ${JSON.stringify(byTurns(after))}`);
emit({
  bench: "multihop",
  accuracy_before: round(s.accuracyBefore ?? 0),
  accuracy_after: round(s.accuracyAfter ?? 0),
  gain: round((s.accuracyAfter ?? 0) - (s.accuracyBefore ?? 0)),
  mean_turns_before: round(before?.meanTurns ?? 0),
  mean_turns_after: round(after?.meanTurns ?? 0),
  accuracy_by_turns_after: byTurns(after),
  steps: s.steps,
  minutes: round(s.seconds / 60, 2),
  episodes_per_s: round(s.episodesPerSecond),
});
