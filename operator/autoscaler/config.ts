// Maps a resolved AgentWorkerPool spec onto the autoscaling core's plain config. The pool comes
// through lib/run-config.ts (or the API server's defaulting): the CRD's defaults are applied and
// its schema and CEL rules checked, so nothing here restates a default or a range.
import { type ResolvedAgentWorkerPoolSpec } from "../../gen/crds/index.js";
import { type AutoscalingConfig, type ScalingRules } from "./types.js";

type Rules = ResolvedAgentWorkerPoolSpec["autoscaling"]["behavior"]["scaleUp"];

const rules = (r: Rules): ScalingRules => ({
  stabilizationWindowSeconds: r.stabilizationWindowSeconds,
  selectPolicy: r.selectPolicy,
  policies: r.policies.map((p) => ({ type: p.type, value: p.value, periodSeconds: p.periodSeconds })),
});

/** The autoscaling core's config for a resolved pool spec. */
export function autoscalingConfig(spec: ResolvedAgentWorkerPoolSpec): AutoscalingConfig {
  const a = spec.autoscaling;
  return {
    enabled: a.enabled,
    minReplicas: a.minReplicas,
    maxReplicas: a.maxReplicas,
    targetBacklogPerWorker: a.targetBacklogPerWorker,
    tolerance: a.tolerance,
    pollingIntervalSeconds: a.pollingInterval,
    smoothingWindowSeconds: a.smoothingWindowSeconds,
    episodesPerWorker: spec.episodesPerWorker,
    behavior: { scaleUp: rules(a.behavior.scaleUp), scaleDown: rules(a.behavior.scaleDown) },
    // Absent = hold replicas and report Degraded; a fallback without replicas holds minReplicas.
    fallback: a.fallback && {
      failureThreshold: a.fallback.failureThreshold,
      replicas: a.fallback.replicas ?? a.minReplicas,
    },
    sawtooth: { ...a.sawtooth },
    saturation: { ...a.saturation },
  };
}
