// Plain types of the autoscaler's pure core. Kept apart from the generated CRD types so the math
// does not depend on how the CRD spells a field; config.ts maps a resolved pool onto them (the
// defaults are the CRD's).

export type PolicyType = "Pods" | "Percent";
export type SelectPolicy = "Max" | "Min" | "Disabled";

/** One rate limit, as the HPA's `HPAScalingPolicy`: at most `value` pods (or percent) per period. */
export interface ScalingPolicy {
  type: PolicyType;
  value: number;
  periodSeconds: number;
}

/** As the HPA's `HPAScalingRules`. */
export interface ScalingRules {
  stabilizationWindowSeconds: number;
  policies: ScalingPolicy[];
  selectPolicy: SelectPolicy;
}

export interface Behavior {
  scaleUp: ScalingRules;
  scaleDown: ScalingRules;
}

/** How the backlog is read across RL's saw-tooth (see docs/autoscaling.md). */
export type SizeFrom = "Backlog" | "StepPeak";

export interface SawtoothOptions {
  /** "StepPeak" sizes the pool from the highest backlog of the last `peakSteps` rollout phases. */
  sizeFrom: SizeFrom;
  peakSteps: number;
  /**
   * Scale to minReplicas between rollouts (training, then weight sync), and back to the step's
   * size in time for the next rollout, when the expected gap is longer than a pod needs to start.
   */
  releaseDuringTraining: boolean;
  /** Seconds from a scale-up to a ready worker (image pull, sandbox warm-up). */
  podStartSeconds: number;
}

export interface SaturationOptions {
  enabled: boolean;
  /** Workers count as saturated when their episodes/s per worker falls this far below the best seen. */
  efficiencyDrop: number;
  /** ...and (when the hub reports it) engine seconds per turn rose this much above its unloaded level. */
  latencyRise: number;
  /** Observations are forgotten after this long, so a grown engine is found again. */
  memorySeconds: number;
  /** An observation counts only once the active worker count has been steady this long. */
  settleSeconds: number;
}

/** Fallback while the hub cannot be reached, as KEDA's `fallback`. */
export interface Fallback {
  failureThreshold: number;
  replicas: number;
}

export interface AutoscalingConfig {
  enabled: boolean;
  minReplicas: number;
  maxReplicas: number;
  targetBacklogPerWorker: number;
  /** Relative band around the current size in which no change is made (the HPA's 0.1). */
  tolerance: number;
  pollingIntervalSeconds: number;
  smoothingWindowSeconds: number;
  /** Concurrent episodes per worker, to tell when every worker has work. */
  episodesPerWorker: number;
  behavior: Behavior;
  fallback?: Fallback;
  sawtooth: SawtoothOptions;
  saturation: SaturationOptions;
}

export type HubPhase = "Waiting" | "Rollout" | "Training" | "Done" | "Unknown";

/** What the autoscaler reads from the hub's Stats, in plain numbers. */
export interface StatsSample {
  /** Unix ms when the sample was taken. */
  at: number;
  backlog: number;
  phase: HubPhase;
  step: number;
  episodesPerSecond: number;
  activeWorkers: number;
  /** 0 when the hub has no recent turns to report. */
  llmSecondsPerTurn: number;
}
