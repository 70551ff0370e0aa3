// Which watch events are worth a reconcile. Status-only updates of the reconciled kind (our own
// status writes) keep metadata.generation; reacting to them would make every write cause a reconcile. Pure.
import { type KubernetesObject } from "@kubernetes/client-node";

/** Primary object updates: spec (generation), labels/annotations, finalizers or deletion changed. */
export function primaryChanged(prev: KubernetesObject, obj: KubernetesObject): boolean {
  const a = prev.metadata ?? {};
  const b = obj.metadata ?? {};
  if (a.generation !== b.generation) return true;
  if (a.deletionTimestamp !== b.deletionTimestamp) return true;
  if (JSON.stringify(a.finalizers ?? []) !== JSON.stringify(b.finalizers ?? [])) return true;
  if (JSON.stringify(a.labels ?? {}) !== JSON.stringify(b.labels ?? {})) return true;
  return JSON.stringify(a.annotations ?? {}) !== JSON.stringify(b.annotations ?? {});
}

/** Child updates: any change (children's status, e.g. a Job failing, drives the parent). */
export function childChanged(prev: KubernetesObject, obj: KubernetesObject): boolean {
  return prev.metadata?.resourceVersion !== obj.metadata?.resourceVersion;
}

/** The controller owner of an object, when it is of `kind`. */
export function controllerOf(obj: KubernetesObject, kind: string): { name: string; uid: string } | undefined {
  const ref = obj.metadata?.ownerReferences?.find((r) => r.controller && r.kind === kind);
  return ref ? { name: ref.name, uid: ref.uid } : undefined;
}
