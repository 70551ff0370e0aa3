// Which worker pods a scale-down should take first: the ReplicaSet controller deletes pods with
// the lowest `controller.kubernetes.io/pod-deletion-cost` first, so the cost is the pod's active
// episodes and idle pods go before busy ones. Pure; the operator applies the patches.

export const DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost";

export interface PodRef {
  name: string;
  annotations?: Record<string, string>;
}

export interface AnnotationPatch {
  pod: string;
  annotations: Record<string, string>;
}

/**
 * Annotations to patch so each pod's deletion cost equals its active episodes. Pods whose cost
 * is already right get no patch (a reconcile run twice changes nothing); pods with no report
 * (missing from `activeEpisodes`) are left as they are, since guessing "idle" could kill work.
 * Costs are clamped to the annotation's int32 range.
 */
export function deletionCostPatches(
  pods: PodRef[],
  activeEpisodes: ReadonlyMap<string, number>,
): AnnotationPatch[] {
  const patches: AnnotationPatch[] = [];
  for (const pod of pods) {
    const active = activeEpisodes.get(pod.name);
    if (active === undefined || !Number.isFinite(active)) continue;
    const cost = String(Math.min(2 ** 31 - 1, Math.max(0, Math.round(active))));
    if (pod.annotations?.[DELETION_COST_ANNOTATION] === cost) continue;
    patches.push({ pod: pod.name, annotations: { [DELETION_COST_ANNOTATION]: cost } });
  }
  return patches;
}
