// The training loop (docs/architecture.md section 7): evaluate -> beginStep(v) -> batch -> toTrainSamples ->
// Learner.Train -> the engines serve v+1 -> checkpoint every N steps -> evaluate every E steps ->
// finish. The hub, the learner and the checkpoint writer are injected, so tests can drive it.
import { type Logger } from "../../../lib/log.js";
import { type l0 } from "../../../lib/proto.js";
import { type Hub } from "../hub/hub.js";
import { type Batch, toTrainSamples } from "../hub/samples.js";
import { type TrainerMetrics } from "./metrics.js";
import { type HistoryRecord } from "./record.js";

/** The Learner calls the loop makes (LearnerClient satisfies it). */
export interface LoopLearner {
  train(req: l0.v1.ITrainRequest): Promise<l0.v1.TrainResponse>;
}

export interface LoopOptions {
  hub: Hub;
  learner: LoopLearner;
  metrics: TrainerMetrics;
  logger: Logger;
  signal: AbortSignal;
  /** The policy version the learner holds now (after warm start or Load). */
  version: number;
  hasEval: boolean;
  /** Save a consistent checkpoint of learner + hub at the hub's current step. */
  checkpoint?: (step: number) => Promise<void>;
  everySteps: number;
  /** Separate inference: export weights and wait until the engines serve `version`. */
  publish?: (version: number, signal: AbortSignal) => Promise<void>;
  /** Sees each step's and evaluation's record (history.jsonl, TensorBoard), after the gauges are set. */
  history?: (rec: HistoryRecord) => void;
  /** Sees each step's batch (the readable trajectory log). */
  trajectories?: (batch: Batch) => void;
  clock?: () => number;
}

/** Pure: whether step `step` (1-based, of `max`) ends with an evaluation or a checkpoint. */
export function scheduleAfter(step: number, max: number, every: number): boolean {
  return every > 0 && step % every === 0 && step < max;
}

/** Runs the remaining steps; resolves with the final policy version (early when aborted). */
export async function runLoop(o: LoopOptions): Promise<number> {
  const { hub, logger, signal } = o;
  const clock = o.clock ?? Date.now;
  const max = hub.settings.maxSteps;
  let version = o.version;
  const record = (rec: HistoryRecord): void => {
    o.metrics.observe(rec);
    o.history?.(rec);
  };
  const evaluate = async (): Promise<void> => {
    if (!o.hasEval || signal.aborted) return;
    const r = await hub.evaluate(version, { signal });
    logger.info("held-out evaluation", { step: hub.step, ...r });
    record({ kind: "eval", step: hub.step, unixMs: clock(), ...r });
  };
  if (hub.step === 0) await evaluate();
  while (hub.step < max && !signal.aborted) {
    const t0 = clock();
    const { step } = await hub.beginStep(version, { signal });
    const batch = await hub.batch(step, { signal });
    o.trajectories?.(batch);
    const samples = toTrainSamples(batch);
    let trained: l0.v1.TrainResponse | null = null;
    if (samples.length > 0) {
      // Not abortable on purpose: a Train in flight finishes, so the learner and hub stay consistent.
      trained = await o.learner.train({ step, samples });
      version = Number(trained.policyVersion);
      if (o.publish) await o.publish(version, signal);
    } else {
      logger.warn("empty batch: nothing to train on", { step, groups: batch.groups.length });
    }
    const rec: HistoryRecord = {
      kind: "step",
      step,
      policyVersion: version,
      unixMs: clock(),
      rewardMean: batch.rewardMean,
      groups: batch.groups.length,
      short: batch.short,
      samples: samples.length,
      loss: trained?.loss,
      kl: trained?.kl,
      entropy: trained?.entropy,
      gradNorm: trained?.gradNorm,
      logprobGap: trained?.logprobGap,
      stepSeconds: (clock() - t0) / 1000,
      trainSeconds: trained?.seconds,
    };
    logger.info("step trained", { ...rec });
    record(rec);
    if (o.checkpoint && (scheduleAfter(step, max, o.everySteps) || step === max)) await o.checkpoint(step);
    if (scheduleAfter(step, max, hub.settings.dataset.evalEvery)) await evaluate();
  }
  if (!signal.aborted) {
    await evaluate();
    hub.finish();
    logger.info("all steps done", { steps: hub.step, policyVersion: version });
  }
  return version;
}
