// `npm run bench -- local`: the tiny-qa run of `l0 local` as shipped, then the same budget with
// dynamic sampling off and with the KL coefficient at 0, each a fresh run with its own warm
// start. Reports held-out accuracy before -> after, wall time and episodes/s for each.
// L0_BENCH_LOCAL_STEPS shortens every variant (default: the manifest's maxSteps);
// L0_BENCH_LOCAL_VARIANTS picks some of: base,no_dynamic_sampling,kl0.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Summary } from "../../local/summary.js";
import { loadExample, runLocal } from "./example-run.js";
import { emit, round } from "./stats.js";

const base = loadExample("tiny-qa");
if (process.env.L0_BENCH_LOCAL_STEPS) base.spec.algorithm.maxSteps = Number(process.env.L0_BENCH_LOCAL_STEPS);

const variants: Record<string, Record<string, unknown>> = {
  base: {},
  no_dynamic_sampling: { dynamicSampling: false },
  kl0: { klCoef: 0 },
};
const chosen = (process.env.L0_BENCH_LOCAL_VARIANTS ?? Object.keys(variants).join(",")).split(",");
const dir = mkdtempSync(join(tmpdir(), "l0-bench-local-"));
const results: Record<string, Summary> = {};
try {
  for (const name of chosen) {
    const run = structuredClone(base);
    Object.assign(run.spec.algorithm, variants[name]);
    const s = runLocal(run, dir, name).summary;
    results[name] = s;
    console.log(
      `${name.padEnd(20)} held-out ${((s.accuracyBefore ?? 0) * 100).toFixed(1)}% -> ${((s.accuracyAfter ?? 0) * 100).toFixed(1)}%` +
        `  ${(s.seconds / 60).toFixed(1)} min  ${s.episodesPerSecond.toFixed(2)} episodes/s  ${s.steps} steps`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const main = results.base ?? Object.values(results)[0]!;
emit({
  bench: "local",
  accuracy_before: round(main.accuracyBefore ?? 0),
  accuracy_after: round(main.accuracyAfter ?? 0),
  minutes: round(main.seconds / 60, 2),
  episodes_per_s: round(main.episodesPerSecond),
  ...Object.fromEntries(
    Object.entries(results).flatMap(([k, s]) => [
      [`${k}_accuracy_after`, round(s.accuracyAfter ?? 0)],
      [`${k}_minutes`, round(s.seconds / 60, 2)],
    ]),
  ),
});
