// Test object builders for the autoscaler: configs and Stats samples with readable overrides.
import { autoscalingConfig } from "../../operator/autoscaler/config.js";
import { type AutoscalingConfig, type StatsSample } from "../../operator/autoscaler/types.js";
import { resolvedPool } from "../fixtures/runs.js";

/** The CRD's defaults (through the resolver), with autoscaling enabled. */
export const DEFAULT_CONFIG: AutoscalingConfig = autoscalingConfig(
  resolvedPool({ autoscaling: { enabled: true } }).spec,
);
export const DEFAULT_SCALE_UP = DEFAULT_CONFIG.behavior.scaleUp;
export const DEFAULT_SCALE_DOWN = DEFAULT_CONFIG.behavior.scaleDown;

export const T0 = 1_700_000_000_000;

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? Partial<T[K]> : T[K] };

export function config(o: DeepPartial<AutoscalingConfig> = {}): AutoscalingConfig {
  const d = DEFAULT_CONFIG;
  return {
    ...d,
    ...(o as Partial<AutoscalingConfig>),
    behavior: { ...d.behavior, ...o.behavior },
    sawtooth: { ...d.sawtooth, ...o.sawtooth },
    saturation: { ...d.saturation, ...o.saturation },
  };
}

export function sample(o: Partial<StatsSample> = {}): StatsSample {
  return {
    at: T0,
    backlog: 0,
    phase: "Rollout",
    step: 1,
    episodesPerSecond: 0,
    activeWorkers: 0,
    llmSecondsPerTurn: 0,
    ...o,
  };
}
