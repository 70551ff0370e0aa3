// The evaluation summary: mean EM / F1 / reward / turns and SimpleQA's judge figures over scored
// answers. Pure, and the one definition `l0 eval` (eval/results.ts) and the hub's in-run
// evaluation (evaluation.ts) both report, so their numbers mean the same thing.
import { type Judgement } from "./judge.js";

/** What the summary reads of one evaluated question. */
export interface ScoredAnswer {
  /** scored: the episode ended for the agent's reasons; failed: infrastructure, after every attempt. */
  status: "scored" | "failed";
  finalAnswer: string | null;
  em: number;
  f1: number;
  reward: number;
  turns: readonly unknown[];
  judge: { judgement: Judgement } | null;
}

export interface JudgeSummary {
  correct: number;
  incorrect: number;
  notAttempted: number;
  /** Questions the judge could not grade after its retries: in no grade or ratio. */
  failed: number;
  /** correct / graded (SimpleQA's "overall correct"). */
  accuracy: number;
  /** correct / (correct + incorrect). */
  accuracyGivenAttempted: number;
  /** Harmonic mean of the two, as SimpleQA reports it. */
  fScore: number;
}

export interface Summary {
  questions: number;
  scored: number;
  /** Infrastructure failures after every attempt: in no mean below. */
  failed: number;
  answered: number;
  em: number;
  f1: number;
  reward: number;
  meanTurns: number;
  judge: JudgeSummary | null;
}

const mean = (xs: number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

function judgeSummary(scored: readonly ScoredAnswer[]): JudgeSummary {
  const count = (j: Judgement): number => scored.filter((r) => r.judge?.judgement === j).length;
  const [correct, incorrect, notAttempted, failed] = [
    count("correct"),
    count("incorrect"),
    count("not_attempted"),
    count("judge_failed"),
  ];
  const graded = correct + incorrect + notAttempted;
  const accuracy = graded ? correct / graded : 0;
  const accuracyGivenAttempted = correct + incorrect ? correct / (correct + incorrect) : 0;
  const fScore =
    accuracy + accuracyGivenAttempted > 0
      ? (2 * accuracy * accuracyGivenAttempted) / (accuracy + accuracyGivenAttempted)
      : 0;
  return { correct, incorrect, notAttempted, failed, accuracy, accuracyGivenAttempted, fScore };
}

/** `judged`: a judge was configured (its figures are reported, zeros included); else judge is null. */
export function summarize(results: readonly ScoredAnswer[], judged: boolean): Summary {
  const scored = results.filter((r) => r.status === "scored");
  return {
    questions: results.length,
    scored: scored.length,
    failed: results.length - scored.length,
    answered: scored.filter((r) => r.finalAnswer !== null).length,
    em: mean(scored.map((r) => r.em)),
    f1: mean(scored.map((r) => r.f1)),
    reward: mean(scored.map((r) => r.reward)),
    meanTurns: mean(scored.map((r) => r.turns.length)),
    judge: judged ? judgeSummary(scored) : null,
  };
}
