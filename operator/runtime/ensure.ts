// Create-or-update of one child from its desired object and the cached observation: create when
// missing, merge-patch when drifted, nothing when it already matches (idle resyncs write nothing).
// An object of the same name that we do not own is left alone and reported. A child the API
// server refuses (422: a spec the schema let through but the child's own validation does not)
// is reported as `rejected` with the server's reason, for a condition instead of a retry loop.
import { type KubernetesObject } from "@kubernetes/client-node";
import { type Obj, CONTENT_FIELDS, drifted, mergePatchFor } from "./diff.js";
import { ApiError, type Kind, type KubeApi } from "./kube.js";

export type EnsureOutcome = "created" | "updated" | "unchanged" | "foreign" | "rejected";

export interface EnsureOptions {
  /** Top-level fields that are ours to keep in step (default spec, data, type). */
  fields?: readonly string[];
  /** The owner's UID: an existing object without it is foreign. */
  ownerUid: string;
}

export interface EnsureResult<T> {
  outcome: EnsureOutcome;
  /** The object as the server has it; for `rejected`, the observed one or else the desired one. */
  obj: T;
  /** Why the API server refused the write (`rejected` only): its message, causes included. */
  rejected?: string;
}

/** "Deployment.apps "x" is invalid: spec.a: Invalid value..." as one line naming each field. */
export function rejection(err: ApiError): string {
  return err.status.message ?? err.message;
}

export async function ensureChild<T extends KubernetesObject>(
  api: KubeApi,
  kind: Kind,
  desired: T,
  actual: T | undefined,
  opts: EnsureOptions,
): Promise<EnsureResult<T>> {
  try {
    return await ensure(api, kind, desired, actual, opts);
  } catch (err) {
    if (err instanceof ApiError && err.code === 422)
      return { outcome: "rejected", obj: actual ?? desired, rejected: rejection(err) };
    throw err;
  }
}

async function ensure<T extends KubernetesObject>(
  api: KubeApi,
  kind: Kind,
  desired: T,
  actual: T | undefined,
  opts: EnsureOptions,
): Promise<EnsureResult<T>> {
  if (!actual) {
    try {
      return { outcome: "created", obj: await api.create(kind, desired) };
    } catch (err) {
      // Outside our caches (a filtered informer, or one not caught up yet): judge the live object.
      if (!(err instanceof ApiError && err.code === 409 && err.reason === "AlreadyExists")) throw err;
      const ns = desired.metadata?.namespace ?? "";
      actual = await api.get<T>(kind, ns, desired.metadata?.name ?? "");
    }
  }
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
