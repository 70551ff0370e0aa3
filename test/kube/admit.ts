// The write path's checks before storage, in the API server's order: the body's kind and
// namespace against the URL, defaulting (built-in table or CRD schema with pruning), then
// validation of metadata and the kind; any failure is one 422 listing every cause.
import { validateBuiltin, applyDefaults } from "./builtin.js";
import { validateMeta, validateName } from "./names.js";
import { canonicalizeQuantities } from "./quantities.js";
import { badRequest, type Cause, forbiddenField, invalid, invalidValue, required } from "./errors.js";
import { type FieldValidation, modelName, pruneUnknown, unknownFieldOutcome } from "./fields.js";
import { type CrValidator, pruneMetadata } from "./schema.js";
import { apiVersionOf, isObj, type Obj, type ResourceType } from "./types.js";

/** Checks the envelope (apiVersion, kind, namespace, name) of a body against its URL. */
export function checkEnvelope(t: ResourceType, body: unknown, ns: string, urlName?: string): Obj {
  if (!isObj(body)) throw badRequest("the request body must be a JSON object");
  const o = body;
  const want = apiVersionOf(t);
  if (o.apiVersion !== undefined && o.apiVersion !== want)
    throw badRequest(
      `the API version in the data (${String(o.apiVersion)}) does not match the expected API version (${want})`,
    );
  if (o.kind !== undefined && o.kind !== t.kind)
    throw badRequest(`the kind in the data (${String(o.kind)}) does not match the expected kind (${t.kind})`);
  o.apiVersion = want;
  o.kind = t.kind;
  o.metadata = pruneMetadata(o.metadata);
  if (t.namespaced) {
    if (o.metadata.namespace !== undefined && o.metadata.namespace !== "" && o.metadata.namespace !== ns)
      throw badRequest(
        "the namespace of the provided object does not match the namespace sent on the request",
      );
    o.metadata.namespace = ns;
  } else delete o.metadata.namespace;
  if (urlName !== undefined && o.metadata.name !== undefined && o.metadata.name !== urlName)
    throw badRequest(
      `the name of the object (${String(o.metadata.name)}) does not match the name on the URL (${urlName})`,
    );
  if (urlName !== undefined) o.metadata.name = urlName;
  return o;
}

function metaCauses(t: ResourceType, o: Obj, old?: Obj): Cause[] {
  const m = o.metadata as Obj;
  const causes: Cause[] = [];
  if (!m.name)
    causes.push({
      ...required("metadata.name"),
      message: "Required value: name or generateName is required",
    });
  else causes.push(...validateName(t.kind, m.name));
  causes.push(...validateMeta(m));
  (m.ownerReferences ?? []).forEach((r: Obj, i: number) => {
    for (const f of ["apiVersion", "kind", "name", "uid"])
      if (!r[f]) causes.push(required(`metadata.ownerReferences[${i}].${f}`));
  });
  if ((m.ownerReferences ?? []).filter((r: Obj) => r.controller === true).length > 1)
    causes.push(
      invalidValue(
        "metadata.ownerReferences",
        m.ownerReferences,
        "Only one reference can have Controller set to true",
      ),
    );
  for (const f of (m.finalizers ?? []) as unknown[])
    if (
      typeof f !== "string" ||
      (!f.includes("/") && !["orphan", "foregroundDeletion", "kubernetes"].includes(f))
    )
      causes.push(
        invalidValue(
          "metadata.finalizers",
          f,
          "name is neither a standard finalizer name nor is it fully qualified",
        ),
      );
  if (old?.metadata?.deletionTimestamp) {
    const before = new Set<string>(old.metadata.finalizers ?? []);
    if ((m.finalizers ?? []).some((f: string) => !before.has(f)))
      causes.push(
        forbiddenField(
          "metadata.finalizers",
          "no new finalizers can be added if the object is being deleted",
        ),
      );
  }
  return causes;
}

/** Defaults and validates `o` in place; throws 422 with every cause. */
export interface AdmitOptions {
  fieldValidation?: FieldValidation;
  /** Receives "unknown field" warnings (the Warning header). */
  warnings?: string[];
}

export function admit(t: ResourceType, o: Obj, crs: CrValidator, old?: Obj, opts: AdmitOptions = {}): Obj {
  let out = o;
  const causes: Cause[] = [];
  if (t.custom) {
    const r = crs.admit(t.kind, o, old);
    out = r.value;
    opts.warnings?.push(...unknownFieldOutcome(r.dropped, opts.fieldValidation));
    causes.push(...r.causes);
  } else {
    const model = modelName(t);
    if (model) {
      const meta = o.metadata;
      const dropped = pruneUnknown(model, o);
      o.metadata = meta;
      opts.warnings?.push(
        ...unknownFieldOutcome(
          dropped.filter((d) => !d.startsWith("metadata")),
          opts.fieldValidation,
        ),
      );
    }
    canonicalizeQuantities(t.kind, t.version, o);
    applyDefaults(t.kind, o);
    causes.push(...validateBuiltin(t.kind, o, old, t.group));
  }
  causes.unshift(...metaCauses(t, out, old));
  if (causes.length > 0) throw invalid(t, String(out.metadata?.name ?? ""), causes);
  return out;
}
