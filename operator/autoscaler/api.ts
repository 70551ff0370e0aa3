// The seam between the AgentWorkerPool reconciler and the autoscaler. The reconciler asks for a
// recommendation once per reconcile and writes it through the pool's scale subresource; the
// autoscaler owns everything behind this interface (Stats polling, smoothing, HPA-style behavior).
// The implementation is BacklogRecommender (recommender.ts); docs/autoscaling.md describes it.
import { type ResolvedAgentWorkerPool } from "../../gen/crds/index.js";

export interface Recommendation {
  /** Replicas the pool should have now. */
  replicas: number;
  /** CamelCase reason, e.g. "BacklogHigh", "EngineSaturated", "HubUnreachable", "Disabled". */
  reason: string;
  message: string;
  /** Backlog the decision was based on, when the hub answered. */
  backlog?: number;
  /** When set, the pool's Degraded condition should be True with this reason/message. */
  degraded?: { reason: string; message: string };
  /** Ask to be reconciled again after this many ms (the polling interval). */
  requeueAfterMs?: number;
}

export interface ReplicaRecommender {
  /** Current replicas are those in the pool's spec (or its scale subresource). */
  recommend(pool: ResolvedAgentWorkerPool, now: Date): Promise<Recommendation>;
  /** Forget state kept for a pool that was deleted. */
  forget(namespace: string, name: string): void;
}

/** Keeps spec.replicas as it is: for `autoscaling.enabled: false` and before the autoscaler lands. */
export const fixedReplicas: ReplicaRecommender = {
  recommend: (pool) =>
    Promise.resolve({
      replicas: pool.spec.replicas ?? 1,
      reason: "Disabled",
      message: "autoscaling disabled",
    }),
  forget: () => undefined,
};
