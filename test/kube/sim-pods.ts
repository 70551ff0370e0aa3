// Pod creation by the simulated ReplicaSet and Job controllers, through the store's create path
// (so admission applies: RuntimeClass, Pod Security, validation). A refused pod becomes what the
// real controllers report: a Warning Event `FailedCreate` "Error creating: <error>" on the owner
// (once per distinct error, as the event recorder's aggregation would show it) and, for a
// ReplicaSet, a `ReplicaFailure` condition that the Deployment copies.
import { randomBytes } from "node:crypto";
import { KubeError } from "./errors.js";
import { stamp, type Store } from "./store.js";
import { clone, type Obj, type ResourceType } from "./types.js";

export interface PodCtx {
  store: Store;
  now: () => Date;
  t: (group: string, plural: string) => ResourceType;
  /** Last creation error reported per owner uid (no event storm while it persists). */
  createErrors: Map<string, string>;
}

export interface PodExtra {
  generateName: string;
  labels?: Obj;
  annotations?: Obj;
  hostname?: string;
  env?: Obj[];
}

function controllerRef(owner: Obj): Obj {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name,
    uid: owner.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

function recordFailure(ctx: PodCtx, owner: Obj, component: string, message: string): void {
  const uid = owner.metadata.uid as string;
  if (ctx.createErrors.get(uid) === message) return;
  ctx.createErrors.set(uid, message);
  const now = stamp(ctx.now());
  ctx.store.create(
    ctx.t("", "events"),
    owner.metadata.namespace,
    {
      metadata: { name: `${owner.metadata.name}.${randomBytes(8).toString("hex")}` },
      involvedObject: {
        apiVersion: owner.apiVersion,
        kind: owner.kind,
        namespace: owner.metadata.namespace,
        name: owner.metadata.name,
        uid,
        resourceVersion: owner.metadata.resourceVersion,
      },
      type: "Warning",
      reason: "FailedCreate",
      message: `Error creating: ${message}`,
      source: { component },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    },
    { manager: "kube-controller-manager" },
  );
}

/**
 * Creates one pod from an owner's template; returns the error message when the API refused it
 * (after recording the FailedCreate event), undefined on success.
 */
export function createPod(
  ctx: PodCtx,
  owner: Obj,
  template: Obj,
  extra: PodExtra,
  component: string,
): string | undefined {
  const tmpl = clone(template ?? {});
  const meta = tmpl.metadata ?? {};
  const spec = tmpl.spec ?? {};
  if (extra.hostname) spec.hostname = extra.hostname;
  if (extra.env) for (const c of spec.containers ?? []) c.env = [...(c.env ?? []), ...extra.env];
  try {
    ctx.store.create(
      ctx.t("", "pods"),
      owner.metadata.namespace,
      {
        metadata: {
          generateName: extra.generateName,
          labels: { ...(meta.labels ?? {}), ...(extra.labels ?? {}) },
          ...(meta.annotations || extra.annotations
            ? { annotations: { ...(meta.annotations ?? {}), ...(extra.annotations ?? {}) } }
            : {}),
          ownerReferences: [controllerRef(owner)],
        },
        spec,
      },
      { manager: "kube-controller-manager" },
    );
    ctx.createErrors.delete(owner.metadata.uid);
    return undefined;
  } catch (err) {
    if (!(err instanceof KubeError)) throw err;
    recordFailure(ctx, owner, component, err.message);
    return err.message;
  }
}

/**
 * A ReplicaSet's conditions after a sync: `ReplicaFailure` set (and kept, message and all, while
 * creation keeps failing) or removed once pods can be created, as the ReplicaSet controller does.
 */
export function replicaFailure(conds: Obj[], error: string | undefined, now: string): Obj[] {
  const cur = conds.find((c) => c.type === "ReplicaFailure");
  if (error && !cur)
    return [
      ...conds,
      {
        type: "ReplicaFailure",
        status: "True",
        lastTransitionTime: now,
        reason: "FailedCreate",
        message: error,
      },
    ];
  if (!error && cur) return conds.filter((c) => c.type !== "ReplicaFailure");
  return conds;
}
