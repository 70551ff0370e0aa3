// The training loop's Prometheus figures (docs/metrics.md): the last Train result, the last
// held-out accuracy, step timing and checkpoints, on the trainer process's injected registry.
import { Counter, Gauge, type Registry } from "prom-client";
import { type l0 } from "../../../lib/proto.js";

export class TrainerMetrics {
  readonly loss: Gauge;
  readonly kl: Gauge;
  readonly gradNorm: Gauge;
  readonly entropy: Gauge;
  readonly logprobGap: Gauge;
  readonly evalAccuracy: Gauge;
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
    this.evalAccuracy = g("l0_eval_accuracy", "Held-out answer accuracy (0..1) at the last evaluation.");
    this.stepSeconds = g("l0_trainer_step_seconds", "Wall time of the last step (rollout + train).");
    this.trainSeconds = g("l0_trainer_train_seconds", "Wall time of the last Learner.Train call.");
    this.checkpoints = new Counter({
      name: "l0_trainer_checkpoints_total",
      help: "Checkpoints written by the training loop.",
      labelNames: ["result"],
      registers: [registry],
    });
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
