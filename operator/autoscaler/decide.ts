// The whole scaling decision for one pool, pure: (config, state, current replicas, one Stats
// observation or a failure, now) -> (replicas, reason, message, next state). The order is the
// HPA's (raw recommendation -> stabilization -> rate policies) with the RL-aware steps in between:
// step-peak sizing, the engine-saturation cap, and letting workers go during training.
import { type BehaviorHistory, emptyHistory, rateLimit, recordScale, stabilize } from "./behavior.js";
import { replicasForBacklog, smoothedBacklog, trimSamples } from "./backlog.js";
import {
  initialSaturation,
  observeThroughput,
  probeLimit,
  type SaturationState,
  saturationVerdict,
} from "./saturation.js";
import { initialPhase, observePhase, type PhaseState, stepPeak, trainingAdvice } from "./sawtooth.js";
import { type AutoscalingConfig, type StatsSample } from "./types.js";

export interface PoolState {
  samples: StatsSample[];
  phase: PhaseState;
  saturation: SaturationState;
  history: BehaviorHistory;
  /** Consecutive Stats failures. */
  failures: number;
  /** Whether the scale-down window was seeded with the replicas found on the first decision. */
  seeded: boolean;
}

export const initialPoolState = (): PoolState => ({
  samples: [],
  phase: initialPhase(),
  saturation: initialSaturation(),
  history: emptyHistory(),
  failures: 0,
  seeded: false,
});

export type Observation = { ok: true; sample: StatsSample } | { ok: false; error: string };
export type Direction = "up" | "down" | "none";

export interface Decision {
  replicas: number;
  direction: Direction;
  /** CamelCase, bounded set (see REASONS). */
  reason: Reason;
  message: string;
  /** The backlog the decision used (smoothed, or the step peak); absent when the hub did not answer. */
  backlog?: number;
  degraded?: { reason: string; message: string };
  /** Workers the engine can keep busy, when saturation was detected. */
  saturationCap?: number;
  state: PoolState;
}

export const REASONS = [
  "BacklogHigh",
  "BacklogLow",
  "WithinTolerance",
  "EngineSaturated",
  "ScaleUpStabilized",
  "ScaleDownStabilized",
  "ScaleUpLimit",
  "ScaleDownLimit",
  "TrainingPhase",
  "PrewarmForRollout",
  "BelowMinReplicas",
  "AboveMaxReplicas",
  "HubUnreachable",
  "Disabled",
] as const;
export type Reason = (typeof REASONS)[number];

const directionOf = (from: number, to: number): Direction => (to > from ? "up" : to < from ? "down" : "none");

/** Scales `current` toward what the backlog asks for. See the module comment for the order. */
export function decide(
  cfg: AutoscalingConfig,
  state: PoolState,
  current: number,
  obs: Observation,
  now: number,
): Decision {
  const { minReplicas: min, maxReplicas: max } = cfg;
  const clamp = (n: number) => Math.min(max, Math.max(min, n));
  const done = (
    next: PoolState,
    replicas: number,
    reason: Reason,
    message: string,
    extra: Partial<Decision> = {},
  ) => {
    const history =
      replicas !== current ? recordScale(next.history, current, replicas, now, cfg.behavior) : next.history;
    return {
      replicas,
      direction: directionOf(current, replicas),
      reason,
      message,
      ...extra,
      state: { ...next, history },
    };
  };

  if (!obs.ok) {
    const failures = state.failures + 1;
    const fb = cfg.fallback;
    const useFallback = fb !== undefined && failures >= fb.failureThreshold;
    const replicas = useFallback ? clamp(fb.replicas) : clamp(current);
    const message = useFallback
      ? `hub unreachable ${failures} times in a row (${obs.error}); using fallback of ${replicas} replicas`
      : `hub unreachable (${obs.error}); holding ${replicas} replicas`;
    return done({ ...state, failures }, replicas, "HubUnreachable", message, {
      degraded: { reason: "HubUnreachable", message },
    });
  }

  // As the HPA does on start: the replicas found count as a recommendation, so an operator
  // restart does not scale a busy pool down before the window has seen the backlog.
  if (!state.seeded && cfg.behavior.scaleDown.stabilizationWindowSeconds > 0) {
    const recommendations = [...state.history.recommendations, { at: now, replicas: current }];
    state = { ...state, history: { ...state.history, recommendations } };
  }
  state = { ...state, seeded: true };
  const sample = obs.sample;
  const samples = trimSamples([...state.samples, sample], now, Math.max(cfg.smoothingWindowSeconds, 0));
  const next: PoolState = {
    ...state,
    failures: 0,
    samples: samples.length > 0 ? samples : [sample],
    phase: observePhase(state.phase, sample),
    saturation: observeThroughput(state.saturation, sample, cfg.episodesPerWorker, cfg.saturation),
  };

  // Outside [min, max] (the spec changed, or someone ran kubectl scale): go straight to the bound.
  if (current < min)
    return done(next, min, "BelowMinReplicas", `${current} replicas is below minReplicas ${min}`);
  if (current > max)
    return done(next, max, "AboveMaxReplicas", `${current} replicas is above maxReplicas ${max}`);

  // 1. Raw recommendation from the backlog (smoothed, or the step peak).
  const smoothed = smoothedBacklog(next.samples, now, cfg.smoothingWindowSeconds);
  const advice = trainingAdvice(next.phase, now, cfg.sawtooth, cfg.pollingIntervalSeconds);
  const usePeak = cfg.sawtooth.sizeFrom === "StepPeak" || advice !== null;
  const backlog = usePeak ? Math.max(smoothed, stepPeak(next.phase, cfg.sawtooth.peakSteps)) : smoothed;
  let desired = replicasForBacklog(backlog, current, cfg);
  let reason: Reason =
    desired > current ? "BacklogHigh" : desired < current ? "BacklogLow" : "WithinTolerance";
  let message = `backlog ${backlog.toFixed(1)}${usePeak ? " (step peak)" : ""} at ${cfg.targetBacklogPerWorker} per worker asks for ${desired}`;

  // 2. Engine saturation caps what is worth asking for; after it expires, probes are bounded.
  const verdict = saturationVerdict(next.saturation, now, cfg.saturation);
  const probe = verdict ? null : probeLimit(next.saturation, now, cfg.saturation);
  if (verdict) next.saturation = { ...next.saturation, lastCap: { cap: verdict.cap, at: now } };
  const cap = verdict ? clamp(verdict.cap) : probe !== null ? clamp(probe) : max;
  const capped = desired > cap;
  if (capped) desired = cap;
  const capMessage = verdict
    ? verdict.message
    : `probing for engine room: it was saturated at ${next.saturation.lastCap?.cap} workers; trying up to ${cap}`;

  // 3. Stabilization windows (the unstabilized, capped value is what gets recorded).
  const st = stabilize(next.history.recommendations, desired, current, now, cfg.behavior);
  const withHistory: PoolState = {
    ...next,
    history: { ...next.history, recommendations: st.recommendations },
  };
  let target = st.replicas;
  if (target !== desired) {
    reason = st.reason as Reason;
    message += `; the ${reason === "ScaleDownStabilized" ? "scale-down" : "scale-up"} window holds ${target}`;
  }
  // Workers past the saturation point only queue at the engine: no window keeps them.
  if (target > cap) target = cap;
  if (capped || (target === cap && st.replicas > cap)) {
    reason = "EngineSaturated";
    message += `; ${capMessage}`;
  }

  // 4. Training phase long enough to let workers go and have them back in time.
  if (advice?.action === "release") {
    target = min;
    reason = "TrainingPhase";
    message = `training for ~${advice.remainingSeconds.toFixed(0)} s more (phases last ~${advice.expectedSeconds.toFixed(0)} s); releasing workers until the next rollout`;
  } else if (advice?.action === "prewarm" && target > current) {
    reason = "PrewarmForRollout";
    message = `next rollout in ~${Math.max(0, advice.remainingSeconds).toFixed(0)} s; ${message}`;
  }

  // 5. Rate policies and bounds.
  const limited = rateLimit(target, current, min, max, withHistory.history, cfg.behavior, now);
  if (limited.replicas !== target) {
    reason =
      limited.reason === "ScaleUpLimit" || limited.reason === "ScaleDownLimit" ? limited.reason : reason;
    message += `; rate policy allows ${limited.replicas} now`;
  }
  return done(withHistory, limited.replicas, reason, message, {
    backlog,
    saturationCap: verdict ? cap : undefined,
  });
}
