// Create-or-update of one child from its desired object and the cached observation: create when
// missing, merge-patch when drifted, nothing when it already matches (idle resyncs write nothing).
// An object of the same name that we do not own is left alone and reported.
import { type KubernetesObject } from "@kubernetes/client-node";
import { type Obj, CONTENT_FIELDS, drifted, mergePatchFor } from "./diff.js";
import { type Kind, type KubeApi } from "./kube.js";

export type EnsureOutcome = "created" | "updated" | "unchanged" | "foreign";

export interface EnsureOptions {
  /** Top-level fields that are ours to keep in step (default spec, data, type). */
  fields?: readonly string[];
  /** The owner's UID: an existing object without it is foreign. */
  ownerUid: string;
}

export async function ensureChild<T extends KubernetesObject>(
  api: KubeApi,
  kind: Kind,
  desired: T,
  actual: T | undefined,
  opts: EnsureOptions,
): Promise<{ outcome: EnsureOutcome; obj: T }> {
  if (!actual) return { outcome: "created", obj: await api.create(kind, desired) };
  if (!(actual.metadata?.ownerReferences ?? []).some((r) => r.uid === opts.ownerUid))
    return { outcome: "foreign", obj: actual };
  const fields = opts.fields ?? CONTENT_FIELDS;
  if (!drifted(desired as unknown as Obj, actual as unknown as Obj, fields))
    return { outcome: "unchanged", obj: actual };
  const ns = actual.metadata?.namespace ?? "";
  const name = actual.metadata?.name ?? "";
  return {
    outcome: "updated",
    obj: await api.mergePatch<T>(kind, ns, name, mergePatchFor(desired as unknown as Obj, fields)),
  };
}
