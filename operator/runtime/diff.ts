// Does an observed child already match what the builder wants? "Desired is a subset of actual":
// fields the API server defaults or other controllers add are not drift, so an idle resync writes
// nothing. Arrays must match element by element (a container list is ours as a whole). Pure.

export function isSubset(desired: unknown, actual: unknown): boolean {
  if (desired === undefined) return true;
  if (desired === null || typeof desired !== "object") return desired === actual;
  if (Array.isArray(desired)) {
    return (
      Array.isArray(actual) &&
      actual.length === desired.length &&
      desired.every((d, i) => isSubset(d, actual[i]))
    );
  }
  if (actual === null || typeof actual !== "object" || Array.isArray(actual)) return false;
  const a = actual as Record<string, unknown>;
  return Object.entries(desired as Record<string, unknown>).every(([k, v]) => isSubset(v, a[k]));
}

interface Meta {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: { uid: string }[];
}
export interface Obj {
  metadata?: Meta;
  [field: string]: unknown;
}

/** The top-level fields a child's drift is judged on (and patched with). */
export const CONTENT_FIELDS = ["spec", "data", "stringData", "type"] as const;

/** True when `actual` lacks something of `desired`: a label, an owner reference or content. */
export function drifted(desired: Obj, actual: Obj, fields: readonly string[] = CONTENT_FIELDS): boolean {
  if (!isSubset(desired.metadata?.labels, actual.metadata?.labels)) return true;
  if (!isSubset(desired.metadata?.annotations, actual.metadata?.annotations)) return true;
  const owners = new Set((actual.metadata?.ownerReferences ?? []).map((r) => r.uid));
  if ((desired.metadata?.ownerReferences ?? []).some((r) => !owners.has(r.uid))) return true;
  return fields.some((f) => !isSubset(desired[f], actual[f]));
}

/** A JSON merge patch that puts `desired`'s labels, owners and the given fields onto the object. */
export function mergePatchFor(
  desired: Obj,
  fields: readonly string[] = CONTENT_FIELDS,
): Record<string, unknown> {
  const patch: Record<string, unknown> = {
    metadata: {
      labels: desired.metadata?.labels,
      annotations: desired.metadata?.annotations,
      ownerReferences: desired.metadata?.ownerReferences,
    },
  };
  for (const f of fields) if (desired[f] !== undefined) patch[f] = desired[f];
  return patch;
}
