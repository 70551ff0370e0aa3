// RL's rhythm as the hub's Stats show it: rollout phases (backlog fills, then drains) and
// training phases (backlog empty). Tracks per-step backlog peaks and training durations so the
// scaler can size from the peak and let workers go during training phases long enough for it.
import { type HubPhase, type SawtoothOptions, type StatsSample } from "./types.js";

export interface PhaseState {
  phase: HubPhase;
  /** When the current phase was first seen; `sawStart` says whether we saw it begin. */
  phaseSince: number;
  sawStart: boolean;
  step: number;
  /** Highest backlog of the rollout phase in progress. */
  currentPeak: number;
  /** Peaks of finished rollout phases, newest last. */
  stepPeaks: number[];
  /** Seconds of fully observed training phases, newest last. */
  trainingSeconds: number[];
}

const KEEP = 8;

export const initialPhase = (): PhaseState => ({
  phase: "Unknown",
  phaseSince: 0,
  sawStart: false,
  step: -1,
  currentPeak: 0,
  stepPeaks: [],
  trainingSeconds: [],
});

const keep = (xs: number[], x: number): number[] => [...xs, x].slice(-KEEP);

/** Folds one Stats sample into the phase state. */
export function observePhase(s: PhaseState, sample: StatsSample): PhaseState {
  const first = s.phase === "Unknown";
  const phaseChanged = sample.phase !== s.phase;
  // A new step seen while still in rollout means the poll missed a short training phase.
  const stepChanged = !first && sample.step !== s.step && s.phase === "Rollout" && sample.phase === "Rollout";
  let next: PhaseState = { ...s, step: sample.step };
  if ((phaseChanged && s.phase === "Rollout") || stepChanged) {
    next = { ...next, stepPeaks: keep(s.stepPeaks, s.currentPeak), currentPeak: 0 };
  }
  if (phaseChanged && s.phase === "Training" && s.sawStart) {
    next = { ...next, trainingSeconds: keep(s.trainingSeconds, (sample.at - s.phaseSince) / 1000) };
  }
  if (phaseChanged) next = { ...next, phase: sample.phase, phaseSince: sample.at, sawStart: !first };
  if (sample.phase === "Rollout") next = { ...next, currentPeak: Math.max(next.currentPeak, sample.backlog) };
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
 * During a training phase whose expected length (median of those seen) exceeds the time a pod
 * needs to be back (`podStartSeconds` plus two polls of margin): "release" while there is time,
 * "prewarm" once the next rollout is closer than that. Null when the option does not apply.
 */
export function trainingAdvice(
  s: PhaseState,
  now: number,
  opts: SawtoothOptions,
  pollingIntervalSeconds: number,
): TrainingAdvice | null {
  if (!opts.releaseDuringTraining || s.phase !== "Training" || s.trainingSeconds.length === 0) return null;
  const expectedSeconds = median(s.trainingSeconds);
  const lead = opts.podStartSeconds + 2 * pollingIntervalSeconds;
  if (expectedSeconds <= lead) return null;
  const remainingSeconds = expectedSeconds - (now - s.phaseSince) / 1000;
  return remainingSeconds > lead
    ? { action: "release", remainingSeconds, expectedSeconds }
    : { action: "prewarm", remainingSeconds, expectedSeconds };
}
