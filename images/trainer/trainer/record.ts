// What the training loop records of each step and evaluation: one HistoryRecord, and the one list
// of its figures that are exported as scalars (SCALARS), which both the Prometheus gauges
// (metrics.ts) and the TensorBoard curves (tensorboard.ts) are drawn from, so they cannot drift.
// history.jsonl keeps the whole record.

import { type JudgeSummary, type Summary } from "../hub/scores.js";

/** One line of the run's history (history.jsonl): a step's figures or an evaluation. */
export interface HistoryRecord {
  kind: "step" | "eval";
  step: number;
  policyVersion: number;
  unixMs: number;
  rewardMean?: number;
  groups?: number;
  short?: boolean;
  samples?: number;
  loss?: number;
  kl?: number;
  entropy?: number;
  gradNorm?: number;
  /** Mean |trainer - engine| log-prob of the step's tokens (TrainResponse.logprob_gap). */
  logprobGap?: number;
  stepSeconds?: number;
  trainSeconds?: number;
  /** Evaluations: `l0 eval`'s summary (hub/scores.ts); accuracy = mean exact match. */
  accuracy?: number;
  em?: number;
  f1?: number;
  reward?: number;
  meanTurns?: number;
  byTurns?: Summary["byTurns"];
  questions?: number;
  scored?: number;
  failed?: number;
  answered?: number;
  dropped?: number;
  judge?: JudgeSummary | null;
}

type NumericField = {
  [K in keyof HistoryRecord]-?: NonNullable<HistoryRecord[K]> extends number ? K : never;
}[keyof HistoryRecord];

export interface ScalarSpec {
  kind: HistoryRecord["kind"];
  /** TensorBoard tag: `section/name`, sections as verl and OpenRLHF group them. */
  tag: string;
  /** The figure in a record; absent (e.g. the judge's, in a run without one) = not exported. */
  value: (rec: HistoryRecord) => number | null | undefined;
  /** The Prometheus gauge holding the last value (docs/metrics.md), where there is one. */
  gauge?: { name: string; help: string; labels?: Record<string, string> };
}

const field = (k: NumericField) => (rec: HistoryRecord) => rec[k];
const judge = (k: keyof JudgeSummary) => (rec: HistoryRecord) => rec.judge?.[k];
const step = (tag: string, k: NumericField, gauge?: ScalarSpec["gauge"]): ScalarSpec => ({
  kind: "step",
  tag,
  value: field(k),
  gauge,
});
const evaluation = (tag: string, value: ScalarSpec["value"], gauge?: ScalarSpec["gauge"]): ScalarSpec => ({
  kind: "eval",
  tag,
  value,
  gauge,
});
const JUDGE_ANSWERS = {
  name: "l0_eval_judge_answers",
  help: "Held-out answers at the last evaluation by the judge's grade (spec.evaluation.judge).",
};

export const SCALARS: readonly ScalarSpec[] = [
  step("rollout/reward_mean", "rewardMean"),
  step("rollout/groups", "groups"),
  step("rollout/samples", "samples"),
  step("train/loss", "loss", { name: "l0_learner_loss", help: "Total loss of the last training step." }),
  step("train/kl", "kl", {
    name: "l0_learner_kl",
    help: "KL to the reference policy at the last training step.",
  }),
  step("train/grad_norm", "gradNorm", {
    name: "l0_learner_grad_norm",
    help: "Gradient norm (before clipping) at the last step.",
  }),
  step("train/entropy", "entropy", {
    name: "l0_learner_entropy",
    help: "Mean token entropy of the policy at the last step.",
  }),
  step("train/logprob_gap", "logprobGap", {
    name: "l0_learner_logprob_gap",
    help: "Mean absolute trainer-vs-engine log-prob difference per token at the last step.",
  }),
  step("train/policy_version", "policyVersion"),
  step("time/step_seconds", "stepSeconds", {
    name: "l0_trainer_step_seconds",
    help: "Wall time of the last step (rollout + train).",
  }),
  step("time/train_seconds", "trainSeconds", {
    name: "l0_trainer_train_seconds",
    help: "Wall time of the last Learner.Train call.",
  }),
  evaluation("eval/accuracy", field("accuracy"), {
    name: "l0_eval_accuracy",
    help: "Held-out answer accuracy (mean exact match, 0..1) at the last evaluation.",
  }),
  evaluation("eval/f1", field("f1"), {
    name: "l0_eval_f1",
    help: "Mean held-out answer F1 (0..1) at the last evaluation.",
  }),
  evaluation("eval/reward", field("reward"), {
    name: "l0_eval_reward",
    help: "Mean training reward of the held-out episodes at the last evaluation.",
  }),
  evaluation("eval/mean_turns", field("meanTurns")),
  evaluation("eval/questions", field("questions")),
  evaluation("eval/scored", field("scored")),
  evaluation("eval/answered", field("answered")),
  evaluation("eval/dropped", field("dropped")),
  evaluation("eval/judge_correct", judge("correct"), { ...JUDGE_ANSWERS, labels: { grade: "correct" } }),
  evaluation("eval/judge_incorrect", judge("incorrect"), {
    ...JUDGE_ANSWERS,
    labels: { grade: "incorrect" },
  }),
  evaluation("eval/judge_not_attempted", judge("notAttempted"), {
    ...JUDGE_ANSWERS,
    labels: { grade: "not_attempted" },
  }),
  evaluation("eval/judge_failed", judge("failed"), { ...JUDGE_ANSWERS, labels: { grade: "judge_failed" } }),
  evaluation("eval/judge_accuracy", judge("accuracy"), {
    name: "l0_eval_judge_accuracy",
    help: "Judge: correct / graded at the last evaluation.",
  }),
  evaluation("eval/judge_accuracy_given_attempted", judge("accuracyGivenAttempted"), {
    name: "l0_eval_judge_accuracy_given_attempted",
    help: "Judge: correct / (correct + incorrect) at the last evaluation.",
  }),
  evaluation("eval/judge_f_score", judge("fScore"), {
    name: "l0_eval_judge_f_score",
    help: "Judge: harmonic mean of accuracy and accuracy given attempted at the last evaluation.",
  }),
];

/** The record's scalars by spec; a figure the record lacks (e.g. loss of an empty batch) is left out. */
export function scalarsOf(rec: HistoryRecord): { spec: ScalarSpec; value: number }[] {
  const out: { spec: ScalarSpec; value: number }[] = [];
  for (const spec of SCALARS) {
    const value = spec.kind === rec.kind ? spec.value(rec) : undefined;
    if (typeof value === "number") out.push({ spec, value });
  }
  return out;
}
