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

/** A recommendation on its way through the steps: replicas, why, and the words for it. */
interface Draft {
  replicas: number;
  reason: Reason;
  message: string;
}

/** Scales `current` toward what the backlog asks for. See the module comment for the order. */
export function decide(
  cfg: AutoscalingConfig,
  state: PoolState,
  current: number,
  obs: Observation,
  now: number,
): Decision {
  const done = (next: PoolState, d: Draft, extra: Partial<Decision> = {}): Decision => {
    const history =
      d.replicas !== current
        ? recordScale(next.history, current, d.replicas, now, cfg.behavior)
        : next.history;
    return { ...d, direction: directionOf(current, d.replicas), ...extra, state: { ...next, history } };
  };
  if (!obs.ok) {
    const { failures, draft } = unreachable(cfg, state, current, obs.error);
    return done({ ...state, failures }, draft, {
      degraded: { reason: "HubUnreachable", message: draft.message },
    });
  }
  const next = observe(cfg, state, current, obs.sample, now);

  // Outside [min, max] (the spec changed, or someone ran kubectl scale): go straight to the bound.
  const { minReplicas: min, maxReplicas: max } = cfg;
  if (current < min)
    return done(next, {
      replicas: min,
      reason: "BelowMinReplicas",
      message: `${current} replicas is below minReplicas ${min}`,
    });
  if (current > max)
    return done(next, {
      replicas: max,
      reason: "AboveMaxReplicas",
      message: `${current} replicas is above maxReplicas ${max}`,
    });

  // 1. Raw recommendation from the backlog (smoothed, or the step peak).
  const advice = trainingAdvice(next.phase, now, cfg.sawtooth, cfg.pollingIntervalSeconds);
  const { backlog, draft: raw } = fromBacklog(cfg, next, current, now, advice !== null);
  // 2. Engine saturation caps what is worth asking for; after it expires, probes are bounded.
  const sat = saturationCap(cfg, next, now);
  // 3. Stabilization windows (the unstabilized, capped value is what gets recorded).
  const { state: withHistory, draft: windowed } = windows(cfg, next, current, now, raw, sat);
  // 4. Training phase long enough to let workers go and have them back in time.
  const phased = forTrainingPhase(windowed, advice, current, min);
  // 5. Rate policies and bounds.
  const limited = rateLimit(phased.replicas, current, min, max, withHistory.history, cfg.behavior, now);
  const final: Draft =
    limited.replicas === phased.replicas
      ? phased
      : {
          replicas: limited.replicas,
          reason:
            limited.reason === "ScaleUpLimit" || limited.reason === "ScaleDownLimit"
              ? limited.reason
              : phased.reason,
          message: `${phased.message}; rate policy allows ${limited.replicas} now`,
        };
  return done(withHistory, final, { backlog, saturationCap: sat.verdict ? sat.cap : undefined });
}

const clampTo = (cfg: AutoscalingConfig, n: number): number =>
  Math.min(cfg.maxReplicas, Math.max(cfg.minReplicas, n));

/** The hub could not be read: hold, or use the fallback after enough failures in a row. */
function unreachable(
  cfg: AutoscalingConfig,
  state: PoolState,
  current: number,
  error: string,
): { failures: number; draft: Draft } {
  const failures = state.failures + 1;
  const fb = cfg.fallback;
  const useFallback = fb !== undefined && failures >= fb.failureThreshold;
  const replicas = useFallback ? clampTo(cfg, fb.replicas) : clampTo(cfg, current);
  const message = useFallback
    ? `hub unreachable ${failures} times in a row (${error}); using fallback of ${replicas} replicas`
    : `hub unreachable (${error}); holding ${replicas} replicas`;
  return { failures, draft: { replicas, reason: "HubUnreachable", message } };
}

/** The state after taking in one Stats sample (smoothing window, phase, throughput). */
function observe(
  cfg: AutoscalingConfig,
  state: PoolState,
  current: number,
  sample: StatsSample,
  now: number,
): PoolState {
  // As the HPA does on start: the replicas found count as a recommendation, so an operator
  // restart does not scale a busy pool down before the window has seen the backlog.
  if (!state.seeded && cfg.behavior.scaleDown.stabilizationWindowSeconds > 0) {
    const recommendations = [...state.history.recommendations, { at: now, replicas: current }];
    state = { ...state, history: { ...state.history, recommendations } };
  }
  const samples = trimSamples([...state.samples, sample], now, Math.max(cfg.smoothingWindowSeconds, 0));
  return {
    ...state,
    seeded: true,
    failures: 0,
    samples: samples.length > 0 ? samples : [sample],
    phase: observePhase(state.phase, sample),
    saturation: observeThroughput(state.saturation, sample, cfg.episodesPerWorker, cfg.saturation),
  };
}

/** Step 1: replicas for the backlog (smoothed, or the step peak when the saw-tooth asks for it). */
function fromBacklog(
  cfg: AutoscalingConfig,
  next: PoolState,
  current: number,
  now: number,
  training: boolean,
): { backlog: number; draft: Draft } {
  const smoothed = smoothedBacklog(next.samples, now, cfg.smoothingWindowSeconds);
  const usePeak = cfg.sawtooth.sizeFrom === "StepPeak" || training;
  const backlog = usePeak ? Math.max(smoothed, stepPeak(next.phase, cfg.sawtooth.peakSteps)) : smoothed;
  const replicas = replicasForBacklog(backlog, current, cfg);
  const reason: Reason =
    replicas > current ? "BacklogHigh" : replicas < current ? "BacklogLow" : "WithinTolerance";
  const message = `backlog ${backlog.toFixed(1)}${usePeak ? " (step peak)" : ""} at ${cfg.targetBacklogPerWorker} per worker asks for ${replicas}`;
  return { backlog, draft: { replicas, reason, message } };
}

interface SaturationCap {
  cap: number;
  verdict: ReturnType<typeof saturationVerdict>;
  message: string;
}

/** Step 2: the most workers worth having while the engine is (or was lately) saturated. */
function saturationCap(cfg: AutoscalingConfig, next: PoolState, now: number): SaturationCap {
  const verdict = saturationVerdict(next.saturation, now, cfg.saturation);
  const probe = verdict ? null : probeLimit(next.saturation, now, cfg.saturation);
  // Remembered in the state so that, once it expires, probes above it are bounded.
  if (verdict) next.saturation = { ...next.saturation, lastCap: { cap: verdict.cap, at: now } };
  const cap = verdict ? clampTo(cfg, verdict.cap) : probe !== null ? clampTo(cfg, probe) : cfg.maxReplicas;
  const message = verdict
    ? verdict.message
    : `probing for engine room: it was saturated at ${next.saturation.lastCap?.cap} workers; trying up to ${cap}`;
  return { cap, verdict, message };
}

/** Step 3: the stabilization windows over the capped recommendation, and the cap again. */
function windows(
  cfg: AutoscalingConfig,
  next: PoolState,
  current: number,
  now: number,
  raw: Draft,
  sat: SaturationCap,
): { state: PoolState; draft: Draft } {
  const capped = raw.replicas > sat.cap;
  const desired = capped ? sat.cap : raw.replicas;
  const st = stabilize(next.history.recommendations, desired, current, now, cfg.behavior);
  const state: PoolState = { ...next, history: { ...next.history, recommendations: st.recommendations } };
  let { reason, message } = raw;
  let replicas = st.replicas;
  if (replicas !== desired) {
    reason = st.reason as Reason;
    message += `; the ${reason === "ScaleDownStabilized" ? "scale-down" : "scale-up"} window holds ${replicas}`;
  }
  // Workers past the saturation point only queue at the engine: no window keeps them.
  if (replicas > sat.cap) replicas = sat.cap;
  if (capped || (replicas === sat.cap && st.replicas > sat.cap)) {
    reason = "EngineSaturated";
    message += `; ${sat.message}`;
  }
  return { state, draft: { replicas, reason, message } };
}

/** Step 4: release workers during a long enough training phase; pre-warm before the next rollout. */
function forTrainingPhase(
  d: Draft,
  advice: ReturnType<typeof trainingAdvice>,
  current: number,
  min: number,
): Draft {
  if (advice?.action === "release")
    return {
      replicas: min,
      reason: "TrainingPhase",
      message: `training for ~${advice.remainingSeconds.toFixed(0)} s more (phases last ~${advice.expectedSeconds.toFixed(0)} s); releasing workers until the next rollout`,
    };
  if (advice?.action === "prewarm" && d.replicas > current)
    return {
      ...d,
      reason: "PrewarmForRollout",
      message: `next rollout in ~${Math.max(0, advice.remainingSeconds).toFixed(0)} s; ${d.message}`,
    };
  return d;
}
