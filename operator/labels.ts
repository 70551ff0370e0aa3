// Names, labels and owner references every builder shares: deterministic names so a repeated
// create is a no-op (STYLE habit 2), and the recommended app.kubernetes.io labels. Pure.
import { type KubernetesObject, type V1OwnerReference } from "@kubernetes/client-node";

export const GROUP_VERSION = "l0.dev/v1alpha1";
export const FINALIZER = "l0.dev/finalizer";
export const RUN_LABEL = "l0.dev/run";
export const POOL_LABEL = "l0.dev/pool";
export const COMPONENT_LABEL = "app.kubernetes.io/component";
export const ATTEMPT_LABEL = "l0.dev/attempt";
/** Pod label the Job controller sets on indexed Job pods (Kubernetes >= 1.28). */
export const JOB_INDEX_LABEL = "batch.kubernetes.io/job-completion-index";

/** Kueue's label naming the LocalQueue of a workload (its job integrations read it). */
export const KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name";

export type Component = "trainer" | "inference" | "workers" | "config";

export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY = "l0-operator";
/** Label selector of everything the operator creates (its Secret and ConfigMap caches use it). */
export const MANAGED_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY}`;

export const names = {
  token: (run: string) => `${run}-token`,
  config: (run: string) => `${run}-config`,
  /** The checkpoint PersistentVolumeClaim the operator creates from checkpoint.storage. */
  checkpoints: (run: string) => `${run}-checkpoints`,
  /** Headless Service: stable DNS for each trainer pod (torchrun rendezvous). */
  trainerService: (run: string) => `${run}-trainer`,
  /** ClusterIP Service on trainer rank 0: the hub's gRPC port and the colocated engine. */
  hubService: (run: string) => `${run}-hub`,
  trainerJob: (run: string, attempt: number) => `${run}-trainer-${attempt}`,
  inference: (run: string) => `${run}-inference`,
  /** The owned AgentWorkerPool of a run with inline workers is named like the run. */
  inlinePool: (run: string) => run,
  workers: (pool: string) => `${pool}-workers`,
};

export function labels(instance: string, component: Component, extra: Record<string, string> = {}) {
  return {
    "app.kubernetes.io/name": "l0",
    "app.kubernetes.io/instance": instance,
    [COMPONENT_LABEL]: component,
    [MANAGED_BY_LABEL]: MANAGED_BY,
    ...extra,
  };
}

/** The controller owner reference to `owner` (garbage collection and "never delete what we do not own"). */
export function ownerRef(owner: KubernetesObject): V1OwnerReference {
  return {
    apiVersion: owner.apiVersion ?? GROUP_VERSION,
    kind: owner.kind ?? "TrainingRun",
    name: owner.metadata?.name ?? "",
    uid: owner.metadata?.uid ?? "",
    controller: true,
    blockOwnerDeletion: true,
  };
}

export const isOwnedBy = (obj: KubernetesObject, owner: KubernetesObject): boolean =>
  !!owner.metadata?.uid && (obj.metadata?.ownerReferences ?? []).some((r) => r.uid === owner.metadata?.uid);

/**
 * A child the run created that lost its owner reference: `kubectl delete --cascade=orphan` has
 * the garbage collector strip it while the run's finalizer still holds the run. Recognised by
 * the labels the builders set (this run, this operator) and by having no controller at all, so
 * an object someone else controls is never taken for one.
 */
export function orphanedChildOf(obj: KubernetesObject, run: KubernetesObject): boolean {
  const l = obj.metadata?.labels ?? {};
  const name = run.metadata?.name;
  return (
    !!name &&
    l[RUN_LABEL] === name &&
    l["app.kubernetes.io/instance"] === name &&
    l[MANAGED_BY_LABEL] === MANAGED_BY &&
    !(obj.metadata?.ownerReferences ?? []).some((r) => r.controller)
  );
}

/** JSON with sorted keys: the same object always serializes to the same bytes (no spurious diffs). */
export function stableJson(v: unknown): string {
  const sort = (x: unknown): unknown =>
    Array.isArray(x)
      ? x.map(sort)
      : x && typeof x === "object"
        ? Object.fromEntries(
            Object.keys(x)
              .sort()
              .map((k) => [k, sort((x as Record<string, unknown>)[k])]),
          )
        : x;
  return JSON.stringify(sort(v), null, 2);
}
