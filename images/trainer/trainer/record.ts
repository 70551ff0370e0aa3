// What the training loop records of each step and evaluation: one HistoryRecord, and the one list
// of its figures that are exported as scalars (SCALARS), which both the Prometheus gauges
// (metrics.ts) and the TensorBoard curves (tensorboard.ts) are drawn from, so they cannot drift.
// history.jsonl keeps the whole record.

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
  accuracy?: number;
  f1?: number;
  scored?: number;
  dropped?: number;
}

type NumericField = {
  [K in keyof HistoryRecord]-?: NonNullable<HistoryRecord[K]> extends number ? K : never;
}[keyof HistoryRecord];

export interface ScalarSpec {
  kind: HistoryRecord["kind"];
  field: NumericField;
  /** TensorBoard tag: `section/name`, sections as verl and OpenRLHF group them. */
  tag: string;
  /** The Prometheus gauge holding the last value (docs/metrics.md), where there is one. */
  gauge?: { name: string; help: string };
}

export const SCALARS: readonly ScalarSpec[] = [
  { kind: "step", field: "rewardMean", tag: "rollout/reward_mean" },
  { kind: "step", field: "groups", tag: "rollout/groups" },
  { kind: "step", field: "samples", tag: "rollout/samples" },
  {
    kind: "step",
    field: "loss",
    tag: "train/loss",
    gauge: { name: "l0_learner_loss", help: "Total loss of the last training step." },
  },
  {
    kind: "step",
    field: "kl",
    tag: "train/kl",
    gauge: { name: "l0_learner_kl", help: "KL to the reference policy at the last training step." },
  },
  {
    kind: "step",
    field: "gradNorm",
    tag: "train/grad_norm",
    gauge: { name: "l0_learner_grad_norm", help: "Gradient norm (before clipping) at the last step." },
  },
  {
    kind: "step",
    field: "entropy",
    tag: "train/entropy",
    gauge: { name: "l0_learner_entropy", help: "Mean token entropy of the policy at the last step." },
  },
  {
    kind: "step",
    field: "logprobGap",
    tag: "train/logprob_gap",
    gauge: {
      name: "l0_learner_logprob_gap",
      help: "Mean absolute trainer-vs-engine log-prob difference per token at the last step.",
    },
  },
  { kind: "step", field: "policyVersion", tag: "train/policy_version" },
  {
    kind: "step",
    field: "stepSeconds",
    tag: "time/step_seconds",
    gauge: { name: "l0_trainer_step_seconds", help: "Wall time of the last step (rollout + train)." },
  },
  {
    kind: "step",
    field: "trainSeconds",
    tag: "time/train_seconds",
    gauge: { name: "l0_trainer_train_seconds", help: "Wall time of the last Learner.Train call." },
  },
  {
    kind: "eval",
    field: "accuracy",
    tag: "eval/accuracy",
    gauge: { name: "l0_eval_accuracy", help: "Held-out answer accuracy (0..1) at the last evaluation." },
  },
  { kind: "eval", field: "f1", tag: "eval/f1" },
  { kind: "eval", field: "scored", tag: "eval/scored" },
  { kind: "eval", field: "dropped", tag: "eval/dropped" },
];

/** The record's scalars by spec; a figure the record lacks (e.g. loss of an empty batch) is left out. */
export function scalarsOf(rec: HistoryRecord): { spec: ScalarSpec; value: number }[] {
  const out: { spec: ScalarSpec; value: number }[] = [];
  for (const spec of SCALARS) {
    const value = rec[spec.field];
    if (spec.kind === rec.kind && typeof value === "number") out.push({ spec, value });
  }
  return out;
}
