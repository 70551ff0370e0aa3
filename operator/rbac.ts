// THE one definition of what the operator may do in the Kubernetes API. The Helm chart's
// ClusterRole/Role are generated from these lists; a test checks the reconcilers' writes against
// them. Least privilege: pods only listed and annotated (the trainer Job and worker Deployment own
// them), secrets only created and, once, patched (a run token Secret from before TLS gets the run's
// certificates added; the token itself is never rewritten), no cluster-scoped writes.

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

const OWNED = ["get", "list", "watch", "create", "update", "patch", "delete"];

/** Rules the operator needs in every namespace it watches (a ClusterRole, or a Role per namespace). */
export const OPERATOR_RULES: readonly PolicyRule[] = [
  // The two kinds it reconciles: spec reads, finalizer updates, owned AgentWorkerPools for inline workers.
  { apiGroups: ["l0.dev"], resources: ["trainingruns", "agentworkerpools"], verbs: OWNED },
  {
    apiGroups: ["l0.dev"],
    resources: ["trainingruns/status", "agentworkerpools/status"],
    verbs: ["get", "update", "patch"],
  },
  // The autoscaler writes replicas through the scale subresource.
  { apiGroups: ["l0.dev"], resources: ["agentworkerpools/scale"], verbs: ["get", "update", "patch"] },
  // Needed to set blockOwnerDeletion on children where OwnerReferencesPermissionEnforcement is on.
  {
    apiGroups: ["l0.dev"],
    resources: ["trainingruns/finalizers", "agentworkerpools/finalizers"],
    verbs: ["update"],
  },
  // Run token and TLS material: created once, read to call the hub's Stats; patched only to add
  // the TLS material to a Secret from before TLS (no update: nothing replaces a Secret whole).
  { apiGroups: [""], resources: ["secrets"], verbs: ["get", "list", "watch", "create", "patch", "delete"] },
  { apiGroups: [""], resources: ["configmaps", "services", "serviceaccounts"], verbs: OWNED },
  // Checkpoint claims (checkpoint.storage): created, resized; deleted only by the garbage
  // collector through the owner reference (a retained claim has none and outlives the run).
  {
    apiGroups: [""],
    resources: ["persistentvolumeclaims"],
    verbs: ["get", "list", "watch", "create", "update", "patch"],
  },
  { apiGroups: ["batch"], resources: ["jobs"], verbs: OWNED },
  { apiGroups: ["apps"], resources: ["deployments"], verbs: OWNED },
  { apiGroups: ["networking.k8s.io"], resources: ["networkpolicies"], verbs: OWNED },
  { apiGroups: ["policy"], resources: ["poddisruptionbudgets"], verbs: OWNED },
  // Worker pods: listed by the pool's selector and annotated with their pod-deletion-cost just
  // before a scale-down, so the ReplicaSet controller removes idle workers first. No get/watch/
  // create/delete: the Deployment owns the pods.
  { apiGroups: [""], resources: ["pods"], verbs: ["list", "patch"] },
  // Events on the objects for every important transition.
  { apiGroups: [""], resources: ["events"], verbs: ["create", "patch"] },
];

/** Rules for leader election, in the operator's own namespace only (a Role). */
export const LEADER_ELECTION_RULES: readonly PolicyRule[] = [
  { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] },
];

/** True when `rules` allow `verb` on `group`/`resource` (resource may carry a "/subresource"). */
export function allows(rules: readonly PolicyRule[], group: string, resource: string, verb: string): boolean {
  return rules.some(
    (r) =>
      (r.apiGroups.includes(group) || r.apiGroups.includes("*")) &&
      (r.resources.includes(resource) || r.resources.includes("*")) &&
      (r.verbs.includes(verb) || r.verbs.includes("*")),
  );
}
