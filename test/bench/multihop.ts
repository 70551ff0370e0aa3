// `npm run bench -- multihop`: examples/tiny-multihop.yaml as shipped through `l0 local` (warm start
// on two-turn demonstrations, then RL), reporting held-out accuracy before -> after, the mean number
// of turns and accuracy by turns taken, and the wall time (issue 21's target: +0.20 with at least two
// turns on average, in at most 20 minutes on the 2-core machine).
// L0_BENCH_MULTIHOP_STEPS changes the number of RL steps (default: the manifest's maxSteps).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Summary } from "../../local/summary.js";
import { loadExample, runLocal } from "./example-run.js";
import { emit, round } from "./stats.js";

const run = loadExample("tiny-multihop");
if (process.env.L0_BENCH_MULTIHOP_STEPS)
  run.spec.algorithm.maxSteps = Number(process.env.L0_BENCH_MULTIHOP_STEPS);

const dir = mkdtempSync(join(tmpdir(), "l0-bench-multihop-"));
let s: Summary;
try {
  // The learner's torch threads (default 1, the engine and the worker share the cores): 2 here,
  // which halves the warm start on this 2-core machine. Override with L0_LEARNER_THREADS.
  const out = runLocal(run, dir, "run", { L0_LEARNER_THREADS: process.env.L0_LEARNER_THREADS ?? "2" });
  s = out.summary;
  // The whole job, warm start included (summary.seconds counts the RL phase's session).
  s.seconds = out.wallSeconds;
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
