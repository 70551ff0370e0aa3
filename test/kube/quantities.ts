// Resource quantities in built-in objects as the API server treats them: decoded (a malformed
// one is a 400 before validation), stored in canonical form (`2048Mi` -> `2Gi`, `1000m` -> `1`,
// lib/quantity.ts) and validated (non-negative, requests <= limits, extended resources whole
// and requested == limit), with apimachinery's messages.
import {
  QUANTITY_FORMAT_ERROR,
  canonicalQuantity,
  compareQuantities,
  parseQuantity,
} from "../../lib/quantity.js";
import { type Cause, KubeError, invalidValue } from "./errors.js";
import { isObj, type Obj } from "./types.js";

/** Every pod spec inside a built-in object (the Pod's own, or a workload's template). */
export function podSpecsOf(kind: string, o: Obj): Obj[] {
  if (kind === "Pod") return isObj(o.spec) ? [o.spec] : [];
  if (["Deployment", "ReplicaSet", "Job"].includes(kind))
    return isObj(o.spec?.template?.spec) ? [o.spec.template.spec] : [];
  return [];
}

const containersOf = (spec: Obj): Obj[] =>
  [...(spec.containers ?? []), ...(spec.initContainers ?? [])].filter(isObj) as Obj[];

/** The maps of quantities a kind carries (mutable references into `o`). */
function quantityMaps(kind: string, o: Obj): Obj[] {
  const maps: Obj[] = [];
  if (kind === "RuntimeClass" && isObj(o.overhead?.podFixed)) maps.push(o.overhead.podFixed);
  for (const spec of podSpecsOf(kind, o)) {
    if (isObj(spec.overhead)) maps.push(spec.overhead);
    for (const c of containersOf(spec))
      for (const f of ["requests", "limits"]) if (isObj(c.resources?.[f])) maps.push(c.resources[f]);
  }
  return maps;
}

/**
 * Rewrites every quantity of a built-in object to its canonical form, as decoding and encoding
 * do on a real server; a malformed one is the decoder's 400.
 */
export function canonicalizeQuantities(kind: string, version: string, o: Obj): void {
  const fix = (holder: Obj, key: string): void => {
    const v = holder[key];
    if (v === undefined || v === null) return;
    try {
      holder[key] = canonicalQuantity(v as string | number);
    } catch (err) {
      const why = (err as Error).message || QUANTITY_FORMAT_ERROR;
      throw new KubeError(
        400,
        "BadRequest",
        `${kind} in version "${version}" cannot be handled as a ${kind}: ${why}`,
      );
    }
  };
  for (const m of quantityMaps(kind, o)) for (const k of Object.keys(m)) fix(m, k);
  for (const spec of podSpecsOf(kind, o))
    for (const v of (spec.volumes ?? []) as Obj[]) if (isObj(v?.emptyDir)) fix(v.emptyDir, "sizeLimit");
}

/** Native resources (no domain, or kubernetes.io) may be overcommitted; extended ones may not. */
const overcommitAllowed = (name: string): boolean =>
  (!name.includes("/") || name.includes("kubernetes.io/")) && !name.startsWith("hugepages-");
const isInteger = (name: string): boolean => !overcommitAllowed(name);

function requirementCauses(res: Obj, path: string): Cause[] {
  const causes: Cause[] = [];
  const limits = (isObj(res.limits) ? res.limits : {}) as Obj;
  const requests = (isObj(res.requests) ? res.requests : {}) as Obj;
  const valueCauses = (field: string, name: string, v: string): void => {
    if (parseQuantity(v).nanos < 0n)
      causes.push(invalidValue(`${field}[${name}]`, v, "must be greater than or equal to 0"));
    else if (isInteger(name) && parseQuantity(v).nanos % 1_000_000_000n !== 0n)
      causes.push(invalidValue(`${field}[${name}]`, v, "must be an integer"));
  };
  for (const [name, v] of Object.entries(limits)) valueCauses(`${path}.limits`, name, String(v));
  for (const [name, v] of Object.entries(requests)) {
    valueCauses(`${path}.requests`, name, String(v));
    const limit = limits[name] as string | undefined;
    if (limit !== undefined) {
      const cmp = compareQuantities(String(v), limit);
      if (cmp !== 0 && !overcommitAllowed(name))
        causes.push(invalidValue(`${path}.requests`, v, `must be equal to ${name} limit of ${limit}`));
      else if (cmp > 0)
        causes.push(
          invalidValue(`${path}.requests`, v, `must be less than or equal to ${name} limit of ${limit}`),
        );
    } else if (!overcommitAllowed(name))
      causes.push({
        reason: "FieldValueRequired",
        message: "Required value: Limit must be set for non overcommitable resources",
        field: `${path}.limits`,
      });
  }
  return causes;
}

/** Validation of the containers' resources of one pod spec at `path` (".spec", ".spec.template.spec"). */
export function podResourceCauses(spec: Obj, path: string): Cause[] {
  const causes: Cause[] = [];
  for (const [list, key] of [
    [spec.containers, "containers"],
    [spec.initContainers, "initContainers"],
  ] as const)
    ((list ?? []) as Obj[]).forEach((c, i) => {
      if (isObj(c?.resources))
        causes.push(...requirementCauses(c.resources, `${path}.${key}[${i}].resources`));
    });
  return causes;
}
