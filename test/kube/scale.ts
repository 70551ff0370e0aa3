// The /scale subresource: an autoscaling/v1 Scale view of an object (the CRD's replicas paths
// for custom kinds, spec.replicas and the selector for Deployments and ReplicaSets).
import { invalid, invalidValue, staleConflict, badRequest } from "./errors.js";
import { selectorString } from "./selectors.js";
import { type Store } from "./store.js";
import { clone, getPath, isObj, type Obj, type ResourceType, setPath } from "./types.js";

export function toScale(t: ResourceType, o: Obj): Obj {
  const s = t.scale!;
  const selector = t.custom
    ? s.labelSelectorPath
      ? getPath(o, s.labelSelectorPath)
      : undefined
    : selectorString(o.spec?.selector);
  const m = o.metadata;
  return {
    kind: "Scale",
    apiVersion: "autoscaling/v1",
    metadata: {
      name: m.name,
      ...(m.namespace ? { namespace: m.namespace } : {}),
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      creationTimestamp: m.creationTimestamp,
    },
    spec: { replicas: (getPath(o, s.specReplicasPath) as number | undefined) ?? 0 },
    status: {
      replicas: (getPath(o, s.statusReplicasPath) as number | undefined) ?? 0,
      ...(selector ? { selector } : {}),
    },
  };
}

/** Writes a Scale back: checks its resourceVersion, sets the replicas path, updates the object. */
export function applyScale(
  store: Store,
  t: ResourceType,
  ns: string,
  name: string,
  scale: unknown,
  manager?: string,
): Obj {
  if (!isObj(scale)) throw badRequest("the request body must be a Scale object");
  const current = store.get(t, ns, name);
  const rv = scale.metadata?.resourceVersion;
  if (rv && rv !== current.metadata.resourceVersion) throw staleConflict(t, name);
  const replicas = scale.spec?.replicas;
  if (typeof replicas !== "number" || !Number.isInteger(replicas) || replicas < 0)
    throw invalid({ ...t, group: "autoscaling", kind: "Scale" }, name, [
      invalidValue("spec.replicas", replicas, "must be greater than or equal to 0"),
    ]);
  const next = clone(current);
  setPath(next, t.scale!.specReplicasPath, replicas);
  return toScale(t, store.update(t, ns, name, next, manager ? { manager } : {}));
}
