// The training loop's Prometheus figures (docs/metrics.md): the last Train result, the last
// held-out evaluation's scores, step timing and checkpoints, on the trainer process's injected registry.
import { Counter, Gauge, type Registry } from "prom-client";
import { type l0 } from "../../../lib/proto.js";
import { type EvalResult } from "../hub/assemble.js";

/** The judge's grades, as the l0_eval_judge_answers label. */
export const JUDGE_GRADES = ["correct", "incorrect", "not_attempted", "judge_failed"] as const;

export class TrainerMetrics {
  readonly loss: Gauge;
  readonly kl: Gauge;
  readonly gradNorm: Gauge;
  readonly entropy: Gauge;
  readonly logprobGap: Gauge;
  readonly evalAccuracy: Gauge;
  readonly evalF1: Gauge;
  readonly evalReward: Gauge;
  readonly judgeAnswers: Gauge<"grade">;
  readonly judgeAccuracy: Gauge;
  readonly judgeAccuracyGivenAttempted: Gauge;
  readonly judgeFScore: Gauge;
  readonly stepSeconds: Gauge;
  readonly trainSeconds: Gauge;
  readonly checkpoints: Counter<"result">;

  constructor(registry: Registry) {
    const g = (name: string, help: string) => new Gauge({ name, help, registers: [registry] });
    this.loss = g("l0_learner_loss", "Total loss of the last training step.");
    this.kl = g("l0_learner_kl", "KL to the reference policy at the last training step.");
    this.gradNorm = g("l0_learner_grad_norm", "Gradient norm (before clipping) at the last step.");
    this.entropy = g("l0_learner_entropy", "Mean token entropy of the policy at the last step.");
    this.logprobGap = g(
      "l0_learner_logprob_gap",
      "Mean absolute trainer-vs-engine log-prob difference per token at the last step.",
    );
    this.evalAccuracy = g(
      "l0_eval_accuracy",
      "Held-out answer accuracy (mean exact match, 0..1) at the last evaluation.",
    );
    this.evalF1 = g("l0_eval_f1", "Mean held-out answer F1 (0..1) at the last evaluation.");
    this.evalReward = g(
      "l0_eval_reward",
      "Mean training reward of the held-out episodes at the last evaluation.",
    );
    this.judgeAnswers = new Gauge({
      name: "l0_eval_judge_answers",
      help: "Held-out answers at the last evaluation by the judge's grade (spec.evaluation.judge).",
      labelNames: ["grade"],
      registers: [registry],
    });
    this.judgeAccuracy = g("l0_eval_judge_accuracy", "Judge: correct / graded at the last evaluation.");
    this.judgeAccuracyGivenAttempted = g(
      "l0_eval_judge_accuracy_given_attempted",
      "Judge: correct / (correct + incorrect) at the last evaluation.",
    );
    this.judgeFScore = g(
      "l0_eval_judge_f_score",
      "Judge: harmonic mean of accuracy and accuracy given attempted at the last evaluation.",
    );
    this.stepSeconds = g("l0_trainer_step_seconds", "Wall time of the last step (rollout + train).");
    this.trainSeconds = g("l0_trainer_train_seconds", "Wall time of the last Learner.Train call.");
    this.checkpoints = new Counter({
      name: "l0_trainer_checkpoints_total",
      help: "Checkpoints written by the training loop.",
      labelNames: ["result"],
      registers: [registry],
    });
  }

  /** A held-out evaluation's scores; the judge's only when the run has a judge. */
  observeEval(r: EvalResult): void {
    this.evalAccuracy.set(r.accuracy);
    this.evalF1.set(r.f1);
    this.evalReward.set(r.reward);
    if (!r.judge) return;
    const count = {
      correct: r.judge.correct,
      incorrect: r.judge.incorrect,
      not_attempted: r.judge.notAttempted,
      judge_failed: r.judge.failed,
    };
    for (const grade of JUDGE_GRADES) this.judgeAnswers.set({ grade }, count[grade]);
    this.judgeAccuracy.set(r.judge.accuracy);
    this.judgeAccuracyGivenAttempted.set(r.judge.accuracyGivenAttempted);
    this.judgeFScore.set(r.judge.fScore);
  }

  observeTrain(r: l0.v1.TrainResponse): void {
    this.loss.set(r.loss);
    this.kl.set(r.kl);
    this.gradNorm.set(r.gradNorm);
    this.entropy.set(r.entropy);
    this.logprobGap.set(r.logprobGap);
    this.trainSeconds.set(r.seconds);
  }
}
