// The end-of-run report of `l0 local`: pure functions from the trainer's history.jsonl (one
// record per step and per evaluation) and the episode outcome counts to a summary and its table.
import { stringify } from "yaml";
import { type JudgeSummary } from "../images/trainer/hub/scores.js";
import { type HistoryRecord } from "../images/trainer/trainer/record.js";

/** One held-out evaluation's scores, as `l0 eval` reports them (judge: with spec.evaluation.judge). */
export interface HeldOutScores {
  step: number;
  em: number | null;
  f1: number | null;
  reward: number | null;
  meanTurns: number | null;
  /** Exact match by the number of turns the answers took ("1", "2", ...). */
  byTurns: Record<string, { scored: number; em: number }> | null;
  judge: JudgeSummary | null;
}

export interface Summary {
  accuracyBefore: number | null;
  accuracyAfter: number | null;
  /** The first (step 0) and last held-out evaluations' scores. */
  heldOutBefore: HeldOutScores | null;
  heldOutAfter: HeldOutScores | null;
  steps: number;
  seconds: number;
  episodes: number;
  episodesPerSecond: number;
  failures: Record<string, number>;
  rewardFirst: number | null;
  rewardLast: number | null;
  /** Mean over the steps of the engine-vs-trainer log-prob gap (mean |difference| per token). */
  logprobGap: number | null;
}

/** Pure: history lines (repeated steps after a resume: the last record of a step wins). */
export function parseHistory(text: string): HistoryRecord[] {
  const steps = new Map<number, HistoryRecord>();
  const evals = new Map<number, HistoryRecord>();
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    let rec: HistoryRecord;
    try {
      rec = JSON.parse(line) as HistoryRecord;
    } catch {
      continue; // a line cut by a crash
    }
    if (rec.kind === "eval") {
      // The first evaluation of a step is the one the run acted on (before = step 0's).
      if (!evals.has(rec.step)) evals.set(rec.step, rec);
    } else if (rec.kind === "step") steps.set(rec.step, rec);
  }
  return [...steps.values(), ...evals.values()].sort(
    (a, b) => a.step - b.step || (a.kind === "eval" ? 1 : -1),
  );
}

const mean = (xs: number[]): number | null => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

function heldOut(r: HistoryRecord | undefined): HeldOutScores | null {
  if (!r) return null;
  return {
    step: r.step,
    em: r.em ?? r.accuracy ?? null,
    f1: r.f1 ?? null,
    reward: r.reward ?? null,
    meanTurns: r.meanTurns ?? null,
    byTurns: r.byTurns ?? null,
    judge: r.judge ?? null,
  };
}

const INFRA = ["sandbox_failure", "engine_failure", "worker_shutdown", "lease_expired"];
const AGENT = ["max_turns", "context_exhausted", "agent_error"];

export function summarize(
  history: readonly HistoryRecord[],
  outcomes: Record<string, number>,
  seconds: number,
): Summary {
  const evals = history.filter((r) => r.kind === "eval");
  const steps = history.filter((r) => r.kind === "step");
  const episodes = Object.values(outcomes).reduce((a, b) => a + b, 0);
  const failures: Record<string, number> = {};
  for (const k of [...AGENT, ...INFRA]) if (outcomes[k]) failures[k] = outcomes[k];
  return {
    accuracyBefore: evals.find((e) => e.step === 0)?.accuracy ?? null,
    accuracyAfter: evals.length > 0 ? (evals[evals.length - 1]!.accuracy ?? null) : null,
    heldOutBefore: heldOut(evals.find((e) => e.step === 0)),
    heldOutAfter: heldOut(evals[evals.length - 1]),
    steps: steps.length > 0 ? steps[steps.length - 1]!.step : 0,
    seconds,
    episodes,
    episodesPerSecond: seconds > 0 ? episodes / seconds : 0,
    failures,
    rewardFirst: steps[0]?.rewardMean ?? null,
    rewardLast: steps[steps.length - 1]?.rewardMean ?? null,
    logprobGap: mean(steps.map((r) => r.logprobGap).filter((x): x is number => x !== undefined)),
  };
}

const pct = (x: number | null): string => (x === null ? "-" : `${(x * 100).toFixed(1)}%`);

/** The judge's figures, before -> after; none when the run has no judge. */
function judgeRows(before: JudgeSummary | null, after: JudgeSummary | null): [string, string][] {
  if (!before && !after) return [];
  const counts = (j: JudgeSummary | null): string =>
    j ? `${j.correct}/${j.incorrect}/${j.notAttempted}/${j.failed}` : "-";
  const both = (f: (j: JudgeSummary) => number): string =>
    `${pct(before ? f(before) : null)} -> ${pct(after ? f(after) : null)}`;
  return [
    ["judge correct/incorrect/not attempted/failed", `${counts(before)} -> ${counts(after)}`],
    ["judge accuracy", both((j) => j.accuracy)],
    ["judge accuracy given attempted", both((j) => j.accuracyGivenAttempted)],
    ["judge F-score", both((j) => j.fScore)],
  ];
}

/** Mean turns and exact match by turns taken, before -> after (rows only where recorded). */
function turnRows(before: HeldOutScores | null, after: HeldOutScores | null): [string, string][] {
  if (after?.meanTurns == null) return [];
  const turns = (h: HeldOutScores | null) => h?.meanTurns?.toFixed(2) ?? "-";
  const by = (h: HeldOutScores | null, n: string): string => {
    const b = h?.byTurns?.[n];
    return b ? `${pct(b.em)} of ${b.scored}` : "-";
  };
  const ns = [...new Set([...Object.keys(before?.byTurns ?? {}), ...Object.keys(after.byTurns ?? {})])];
  return [
    ["held-out mean turns", `${turns(before)} -> ${turns(after)}`],
    ...ns
      .sort((a, b) => Number(a) - Number(b))
      .map((n): [string, string] => [
        `held-out accuracy, ${n} turn(s)`,
        `${by(before, n)} -> ${by(after, n)}`,
      ]),
  ];
}

/** Pure: the summary as an aligned two-column table. */
export function summaryTable(s: Summary): string {
  const failures = Object.entries(s.failures)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  const rows: [string, string][] = [
    ["held-out accuracy", `${pct(s.accuracyBefore)} -> ${pct(s.accuracyAfter)}`],
    ["held-out F1", `${pct(s.heldOutBefore?.f1 ?? null)} -> ${pct(s.heldOutAfter?.f1 ?? null)}`],
    ...judgeRows(s.heldOutBefore?.judge ?? null, s.heldOutAfter?.judge ?? null),
    ...turnRows(s.heldOutBefore, s.heldOutAfter),
    [
      "reward mean (first -> last step)",
      `${s.rewardFirst?.toFixed(3) ?? "-"} -> ${s.rewardLast?.toFixed(3) ?? "-"}`,
    ],
    ["steps", String(s.steps)],
    [
      "engine vs trainer log-prob gap",
      s.logprobGap === null ? "-" : `${s.logprobGap.toFixed(4)} per token (mean)`,
    ],
    ["time", `${(s.seconds / 60).toFixed(1)} min`],
    ["episodes (this session)", `${s.episodes} (${s.episodesPerSecond.toFixed(2)}/s)`],
    ["not answered, by reason", failures || "none"],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`).join("\n");
}

/** Pure: the summary as `--output` asks: the table, or the object as JSON or YAML (for scripts). */
export function formatSummary(s: Summary, output: "table" | "json" | "yaml"): string {
  if (output === "json") return JSON.stringify(s, null, 2);
  if (output === "yaml") return stringify(s).trimEnd();
  return summaryTable(s);
}
