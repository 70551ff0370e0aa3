// Does an observed child already match what the builder wants? "Desired is a subset of actual":
// fields the API server defaults or other controllers add are not drift, so an idle resync writes
// nothing. Arrays must match element by element (a container list is ours as a whole). Resource
// quantities compare by value: the server stores `2048Mi` as `2Gi`, which is no drift. Pure.
import { sameQuantity } from "../../lib/quantity.js";

/** Keys whose values are maps of quantities (resources.requests/limits, pod overhead). */
const QUANTITY_MAPS = new Set(["requests", "limits", "overhead"]);
/** Keys whose value is one quantity (emptyDir.sizeLimit). */
const QUANTITY_KEYS = new Set(["sizeLimit"]);

type Mode = "plain" | "quantityMap" | "quantity";

export function isSubset(desired: unknown, actual: unknown, mode: Mode = "plain"): boolean {
  if (desired === undefined) return true;
  if (mode === "quantity" && desired !== null && typeof desired !== "object")
    return desired === actual || sameQuantity(desired, actual);
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
  return Object.entries(desired as Record<string, unknown>).every(([k, v]) =>
    isSubset(
      v,
      a[k],
      mode === "quantityMap" || QUANTITY_KEYS.has(k)
        ? "quantity"
        : QUANTITY_MAPS.has(k)
          ? "quantityMap"
          : "plain",
    ),
  );
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
