// The Deployment controller's replica arithmetic, pure: RollingUpdate (maxSurge rounds up,
// maxUnavailable down, both from percentages of spec.replicas; unhealthy old pods go first)
// and Recreate (old ReplicaSets to zero before the new one grows). One step per call.

export interface RsState {
  uid: string;
  replicas: number; // spec.replicas
  available: number; // status.availableReplicas
  pods: number; // status.replicas (pods that still exist)
}

export interface RolloutSpec {
  replicas: number;
  strategy?: {
    type?: string;
    rollingUpdate?: { maxSurge?: number | string; maxUnavailable?: number | string };
  };
}

/** intstr.GetScaledValueFromIntOrPercent. */
export function scaled(
  v: number | string | undefined,
  total: number,
  roundUp: boolean,
  dflt: string,
): number {
  const x = v ?? dflt;
  if (typeof x === "number") return x;
  const pct = Number(x.replace(/%$/, ""));
  const raw = (pct * total) / 100;
  return roundUp ? Math.ceil(raw) : Math.floor(raw);
}

/** The next spec.replicas of each ReplicaSet (by uid) for one reconcile step. */
export function rolloutStep(spec: RolloutSpec, current: RsState, olds: RsState[]): Map<string, number> {
  const out = new Map<string, number>([
    [current.uid, current.replicas],
    ...olds.map((o): [string, number] => [o.uid, o.replicas]),
  ]);
  const desired = spec.replicas;
  const active = olds.filter((o) => o.replicas > 0);
  if (active.length === 0) {
    out.set(current.uid, desired);
    return out;
  }
  if (spec.strategy?.type === "Recreate") {
    for (const o of olds) out.set(o.uid, 0);
    if (olds.every((o) => o.pods === 0)) out.set(current.uid, desired);
    return out;
  }
  const ru = spec.strategy?.rollingUpdate ?? {};
  const surge = scaled(ru.maxSurge, desired, true, "25%");
  let unavailable = scaled(ru.maxUnavailable, desired, false, "25%");
  if (surge === 0 && unavailable === 0) unavailable = 1;
  const total = current.replicas + olds.reduce((a, o) => a + o.replicas, 0);
  // Scale up the new ReplicaSet within the surge.
  if (current.replicas < desired) {
    const room = Math.max(0, desired + surge - total);
    out.set(current.uid, Math.min(desired, current.replicas + room));
  } else if (current.replicas > desired) out.set(current.uid, desired);
  // Scale down old ones while enough pods stay available; unhealthy old pods first.
  const minAvailable = desired - unavailable;
  const allAvailable = current.available + olds.reduce((a, o) => a + o.available, 0);
  let budget = Math.max(0, allAvailable - minAvailable);
  for (const o of active) {
    const unhealthy = Math.max(0, o.replicas - o.available);
    const fromHealthy = Math.min(o.replicas - unhealthy, budget);
    budget -= fromHealthy;
    out.set(o.uid, o.replicas - unhealthy - fromHealthy);
  }
  return out;
}
