// The HPA's `behavior` semantics as pure functions over explicit history: stabilization windows
// over past recommendations, and rate policies over past scale events. Follows
// kubernetes/pkg/controller/podautoscaler/horizontal.go (stabilizeRecommendationWithBehaviors,
// convertDesiredReplicasWithBehaviorRate, calculateScale{Up,Down}Limit...) case for case.
import { type Behavior, type ScalingRules } from "./types.js";

export interface TimedRecommendation {
  at: number;
  replicas: number;
}

/** A scale that happened: `change` pods added (scale-up events) or removed (scale-down events). */
export interface ScaleEvent {
  at: number;
  change: number;
}

export interface BehaviorHistory {
  recommendations: TimedRecommendation[];
  scaleUpEvents: ScaleEvent[];
  scaleDownEvents: ScaleEvent[];
}

export const emptyHistory = (): BehaviorHistory => ({
  recommendations: [],
  scaleUpEvents: [],
  scaleDownEvents: [],
});

export interface Limited {
  replicas: number;
  /** The HPA's condition reasons: ScaleUpStabilized, ScaleDownStabilized, ScaleUpLimit, ... */
  reason: string;
}

/**
 * Applies both stabilization windows to `desired`: the result never goes above the lowest
 * recommendation of the scale-up window nor below the highest of the scale-down window.
 * Returns the stabilized value and the recommendation list with `desired` recorded.
 */
export function stabilize(
  history: TimedRecommendation[],
  desired: number,
  current: number,
  now: number,
  behavior: Behavior,
): { replicas: number; reason: string; recommendations: TimedRecommendation[] } {
  const upCutoff = now - behavior.scaleUp.stabilizationWindowSeconds * 1000;
  const downCutoff = now - behavior.scaleDown.stabilizationWindowSeconds * 1000;
  let up = desired;
  let down = desired;
  for (const r of history) {
    if (r.at > upCutoff) up = Math.min(up, r.replicas);
    if (r.at > downCutoff) down = Math.max(down, r.replicas);
  }
  let replicas = current;
  if (replicas < up) replicas = up;
  if (replicas > down) replicas = down;
  // Keep only what either window can still see, plus this recommendation.
  const keepAfter = Math.min(upCutoff, downCutoff);
  const recommendations = [...history.filter((r) => r.at > keepAfter), { at: now, replicas: desired }];
  const reason = desired >= current ? "ScaleUpStabilized" : "ScaleDownStabilized";
  return { replicas, reason, recommendations };
}

/** Sum of the changes within the last `periodSeconds`. */
export function changeInPeriod(events: ScaleEvent[], periodSeconds: number, now: number): number {
  const cutoff = now - periodSeconds * 1000;
  return events.reduce((sum, e) => (e.at > cutoff ? sum + e.change : sum), 0);
}

/** Highest replica count the scale-up policies allow now. */
export function scaleUpLimit(current: number, h: BehaviorHistory, rules: ScalingRules, now: number): number {
  if (rules.selectPolicy === "Disabled") return current;
  const pick = rules.selectPolicy === "Min" ? Math.min : Math.max;
  let result = rules.selectPolicy === "Min" ? Infinity : -Infinity;
  for (const p of rules.policies) {
    const start =
      current -
      changeInPeriod(h.scaleUpEvents, p.periodSeconds, now) +
      changeInPeriod(h.scaleDownEvents, p.periodSeconds, now);
    // Percent rounds up, so a small pool can always grow by at least one pod.
    const proposed = p.type === "Pods" ? start + p.value : Math.ceil(start * (1 + p.value / 100));
    result = pick(result, proposed);
  }
  return result;
}

/** Lowest replica count the scale-down policies allow now. */
export function scaleDownLimit(
  current: number,
  h: BehaviorHistory,
  rules: ScalingRules,
  now: number,
): number {
  if (rules.selectPolicy === "Disabled") return current;
  const pick = rules.selectPolicy === "Min" ? Math.max : Math.min;
  let result = rules.selectPolicy === "Min" ? -Infinity : Infinity;
  for (const p of rules.policies) {
    const start =
      current -
      changeInPeriod(h.scaleUpEvents, p.periodSeconds, now) +
      changeInPeriod(h.scaleDownEvents, p.periodSeconds, now);
    const proposed = p.type === "Pods" ? start - p.value : Math.floor(start * (1 - p.value / 100));
    result = pick(result, proposed);
  }
  return result;
}

/** Bounds `desired` by the rate policies and by min/max, as the HPA does after stabilizing. */
export function rateLimit(
  desired: number,
  current: number,
  min: number,
  max: number,
  h: BehaviorHistory,
  behavior: Behavior,
  now: number,
): Limited {
  if (desired > current) {
    const limit = Math.max(current, scaleUpLimit(current, h, behavior.scaleUp, now));
    const allowed = Math.min(max, limit);
    if (desired > allowed)
      return { replicas: allowed, reason: max > limit ? "ScaleUpLimit" : "TooManyReplicas" };
  } else if (desired < current) {
    const limit = Math.min(current, scaleDownLimit(current, h, behavior.scaleDown, now));
    const allowed = Math.max(min, limit);
    if (desired < allowed)
      return { replicas: allowed, reason: min < limit ? "ScaleDownLimit" : "TooFewReplicas" };
  }
  return { replicas: desired, reason: "DesiredWithinRange" };
}

/** Records a scale from `from` to `to`, dropping events older than every policy's period. */
export function recordScale(
  h: BehaviorHistory,
  from: number,
  to: number,
  now: number,
  behavior: Behavior,
): BehaviorHistory {
  const longest = (r: ScalingRules) => Math.max(0, ...r.policies.map((p) => p.periodSeconds));
  const upCut = now - longest(behavior.scaleUp) * 1000;
  const downCut = now - longest(behavior.scaleDown) * 1000;
  const scaleUpEvents = h.scaleUpEvents.filter((e) => e.at > upCut);
  const scaleDownEvents = h.scaleDownEvents.filter((e) => e.at > downCut);
  if (to > from) scaleUpEvents.push({ at: now, change: to - from });
  if (to < from) scaleDownEvents.push({ at: now, change: from - to });
  return { recommendations: h.recommendations, scaleUpEvents, scaleDownEvents };
}
