// RL's rhythm as the hub's Stats show it: rollout phases (backlog fills, then drains) and the
// gaps between them (the learner trains, then the engines load the new weights; backlog empty).
// Tracks per-step backlog peaks and gap lengths so the scaler can size from the peak and let
// workers go during gaps long enough for them to be back in time.
import { type HubPhase, type SawtoothOptions, type StatsSample } from "./types.js";

export interface PhaseState {
  phase: HubPhase;
  step: number;
  /** Highest backlog of the rollout phase in progress. */
  currentPeak: number;
  /** Peaks of finished rollout phases, newest last. */
  stepPeaks: number[];
  /**
   * When the last rollout ended, while the hub is between rollouts (training, then waiting for
   * the engines to load the new weights); null otherwise, and before the first rollout seen.
   */
  gapSince: number | null;
  /** Seconds of fully observed gaps between rollouts, newest last. */
  gapSeconds: number[];
}

const KEEP = 8;

export const initialPhase = (): PhaseState => ({
  phase: "Unknown",
  step: -1,
  currentPeak: 0,
  stepPeaks: [],
  gapSince: null,
  gapSeconds: [],
});

const keep = (xs: number[], x: number): number[] => [...xs, x].slice(-KEEP);
const between = (p: HubPhase) => p === "Training" || p === "Waiting";

/** Folds one Stats sample into the phase state. */
export function observePhase(s: PhaseState, sample: StatsSample): PhaseState {
  const first = s.phase === "Unknown";
  const wasRollout = s.phase === "Rollout";
  const isRollout = sample.phase === "Rollout";
  // A new step seen while still in rollout means the polls missed a short gap.
  const stepChanged = !first && wasRollout && isRollout && sample.step !== s.step;
  let next: PhaseState = { ...s, phase: sample.phase, step: sample.step };
  if ((wasRollout && !isRollout) || stepChanged) {
    next = { ...next, stepPeaks: keep(s.stepPeaks, s.currentPeak), currentPeak: 0 };
  }
  if (wasRollout && between(sample.phase)) next = { ...next, gapSince: sample.at };
  if (isRollout && s.gapSince !== null) {
    next = { ...next, gapSeconds: keep(s.gapSeconds, (sample.at - s.gapSince) / 1000) };
  }
  if (!between(sample.phase)) next = { ...next, gapSince: null };
  if (isRollout) next = { ...next, currentPeak: Math.max(next.currentPeak, sample.backlog) };
  return next;
}

/** Highest backlog over the rollout in progress and the last `steps` finished ones. */
export function stepPeak(s: PhaseState, steps: number): number {
  return Math.max(s.currentPeak, ...s.stepPeaks.slice(-Math.max(1, steps)));
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

export type TrainingAdvice =
  | { action: "release"; remainingSeconds: number; expectedSeconds: number }
  | { action: "prewarm"; remainingSeconds: number; expectedSeconds: number };

/**
 * Between rollouts, when the expected gap (median of those seen) exceeds the time a pod needs to
 * be back (`podStartSeconds` plus two polls of margin): "release" while there is time, "prewarm"
 * once the next rollout is closer than that. Null when the option does not apply.
 */
export function trainingAdvice(
  s: PhaseState,
  now: number,
  opts: SawtoothOptions,
  pollingIntervalSeconds: number,
): TrainingAdvice | null {
  if (!opts.releaseDuringTraining || s.gapSince === null || s.gapSeconds.length === 0) return null;
  const expectedSeconds = median(s.gapSeconds);
  const lead = opts.podStartSeconds + 2 * pollingIntervalSeconds;
  if (expectedSeconds <= lead) return null;
  const remainingSeconds = expectedSeconds - (now - s.gapSince) / 1000;
  return remainingSeconds > lead
    ? { action: "release", remainingSeconds, expectedSeconds }
    : { action: "prewarm", remainingSeconds, expectedSeconds };
}
