// The standalone step driver of `l0 hub` (no learner): it steps through batches as the training
// loop does (beginStep -> batch -> toTrainSamples -> checkpoint, evaluations on schedule) but
// trains nothing, so the policy version never moves; for load tests and benchmarks. `l0 trainer`
// (images/trainer/trainer/loop.ts) calls Learner.Train where this one only counts the samples.
import { type Logger, errorFields } from "../../../lib/log.js";
import { type Hub } from "./hub.js";
import { toTrainSamples } from "./samples.js";

export interface DriverOptions {
  signal: AbortSignal;
  logger: Logger;
  /** Whether spec.dataset.evalPath was given. */
  hasEval: boolean;
  /** Persists hub.snapshot(); called after every served batch and at the end. */
  saveCheckpoint: () => void;
}

export async function driveStandalone(hub: Hub, opts: DriverOptions): Promise<void> {
  const { signal, logger } = opts;
  const version = hub.policyVersion;
  const evalEvery = hub.settings.dataset.evalEvery;
  const evaluate = async (): Promise<void> => {
    if (!opts.hasEval) return;
    const r = await hub.evaluate(version, { signal });
    logger.info("held-out evaluation", { step: hub.step, ...r });
  };
  try {
    if (hub.step === 0) await evaluate();
    while (hub.step < hub.settings.maxSteps && !signal.aborted) {
      const { step } = await hub.beginStep(version, { signal });
      const batch = await hub.batch(step, { signal });
      const samples = toTrainSamples(batch);
      logger.info("batch ready (standalone: not trained)", {
        step,
        groups: batch.groups.length,
        short: batch.short,
        samples: samples.length,
        rewardMean: batch.rewardMean,
      });
      opts.saveCheckpoint();
      if (evalEvery > 0 && step % evalEvery === 0 && step < hub.settings.maxSteps) await evaluate();
    }
    if (!signal.aborted) {
      await evaluate();
      hub.finish();
      opts.saveCheckpoint();
      logger.info("all steps done", { steps: hub.step });
    }
  } catch (err) {
    if (signal.aborted) return; // shutting down: the shutdown hook writes the checkpoint
    logger.error("standalone driver stopped", errorFields(err));
    throw err;
  }
}
