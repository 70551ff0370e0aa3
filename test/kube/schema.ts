// Custom resources against their CRD's OpenAPI v3 schema, in the API server's order: prune
// unknown fields (structural schemas), apply defaults, validate; failures become 422 causes in
// the server's wording, then the CEL rules (lib/cel.ts; transition rules against the stored
// object on updates). The dialect conversion is lib/crd-schema.ts's.
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";
import { celViolations } from "../../lib/cel.js";
import { type CrdInfo, toDraft7 } from "../../lib/crd-schema.js";
import { type Cause } from "./errors.js";
import { isObj, type Obj } from "./types.js";

type Schema = Record<string, any>;

/** Drops fields the schema does not declare, as a structural schema's pruning does. */
export function prune(
  schema: Schema | undefined,
  value: unknown,
  dropped: string[] = [],
  path = "",
): unknown {
  if (!schema || schema["x-kubernetes-int-or-string"]) return value;
  if (Array.isArray(value))
    return schema.items ? value.map((v, i) => prune(schema.items, v, dropped, `${path}[${i}]`)) : value;
  if (!isObj(value)) return value;
  const preserve = schema["x-kubernetes-preserve-unknown-fields"] === true;
  const props = (schema.properties ?? {}) as Record<string, Schema>;
  const extra = schema.additionalProperties;
  const out: Obj = {};
  for (const [k, v] of Object.entries(value)) {
    const sub = path ? `${path}.${k}` : k;
    if (props[k]) out[k] = prune(props[k], v, dropped, sub);
    else if (isObj(extra)) out[k] = prune(extra, v, dropped, `${path}[${k}]`);
    else if (preserve || extra === true) out[k] = v;
    else dropped.push(sub);
  }
  return out;
}

const META_FIELDS = new Set([
  "name",
  "generateName",
  "namespace",
  "uid",
  "resourceVersion",
  "generation",
  "creationTimestamp",
  "deletionTimestamp",
  "deletionGracePeriodSeconds",
  "labels",
  "annotations",
  "ownerReferences",
  "finalizers",
  "managedFields",
  "selfLink",
]);

/** ObjectMeta keeps only its own fields (the server drops unknown metadata keys silently). */
export function pruneMetadata(meta: unknown): Obj {
  if (!isObj(meta)) return {};
  return Object.fromEntries(Object.entries(meta).filter(([k]) => META_FIELDS.has(k)));
}

function fieldOf(e: ErrorObject): string {
  const path = e.instancePath
    .split("/")
    .slice(1)
    .map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p.replace(/~1/g, "/").replace(/~0/g, "~")}`))
    .join("")
    .replace(/^\./, "");
  if (e.keyword === "required") return [path, (e.params as Obj).missingProperty].filter(Boolean).join(".");
  return path;
}

function causeOf(e: ErrorObject, root: unknown): Cause {
  const field = fieldOf(e);
  const value = e.instancePath
    .split("/")
    .slice(1)
    .reduce<any>((a, k) => (a == null ? a : a[k.replace(/~1/g, "/")]), root);
  const p = e.params as Obj;
  const v = JSON.stringify(value);
  const at = `${field} in body`;
  switch (e.keyword) {
    case "required":
      return { reason: "FieldValueRequired", message: "Required value", field };
    case "enum":
      return {
        reason: "FieldValueNotSupported",
        message: `Unsupported value: ${v}: supported values: ${(p.allowedValues as unknown[]).map((x) => JSON.stringify(x)).join(", ")}`,
        field,
      };
    case "type":
      return {
        reason: "FieldValueTypeInvalid",
        message: `Invalid value: ${v}: ${at} must be of type ${p.type}: ${v}`,
        field,
      };
    case "minimum":
      return {
        reason: "FieldValueInvalid",
        message: `Invalid value: ${v}: ${at} should be greater than or equal to ${p.limit}`,
        field,
      };
    case "maximum":
      return {
        reason: "FieldValueInvalid",
        message: `Invalid value: ${v}: ${at} should be less than or equal to ${p.limit}`,
        field,
      };
    case "exclusiveMinimum":
      return {
        reason: "FieldValueInvalid",
        message: `Invalid value: ${v}: ${at} should be greater than ${p.limit}`,
        field,
      };
    case "exclusiveMaximum":
      return {
        reason: "FieldValueInvalid",
        message: `Invalid value: ${v}: ${at} should be less than ${p.limit}`,
        field,
      };
    case "minLength":
      return {
        reason: "FieldValueInvalid",
        message: `Invalid value: ${v}: ${at} should be at least ${p.limit} chars long`,
        field,
      };
    case "maxLength":
      return {
        reason: "FieldValueTooLong",
        message: `Too long: may not be more than ${p.limit} bytes`,
        field,
      };
    case "pattern":
      return {
        reason: "FieldValueInvalid",
        message: `Invalid value: ${v}: ${at} should match '${p.pattern}'`,
        field,
      };
    case "minItems":
      return {
        reason: "FieldValueInvalid",
        message: `Invalid value: ${v}: ${at} should have at least ${p.limit} items`,
        field,
      };
    case "maxItems":
      return {
        reason: "FieldValueTooMany",
        message: `Too many: ${(value as unknown[]).length}: must have at most ${p.limit} items`,
        field,
      };
    default:
      return {
        reason: "FieldValueInvalid",
        message: `Invalid value: ${v}: ${e.message ?? "is invalid"}`,
        field,
      };
  }
}

export interface CrValidator {
  /**
   * Prunes, defaults and validates a custom resource (`old` is the stored object on an update,
   * for transition rules); returns the stored form and the causes.
   */
  admit(kind: string, obj: Obj, old?: Obj): { value: Obj; causes: Cause[]; dropped: string[] };
}

// Compiling the schemas is most of a start-up; compiled validators are pure, so servers that
// serve the same CRDs share them (keyed by the schemas' text).
const compiled = new Map<string, CrValidator>();

export function createCrValidator(crds: CrdInfo[]): CrValidator {
  const key = JSON.stringify(crds.map((c) => [c.kind, c.schema]));
  let v = compiled.get(key);
  if (!v) compiled.set(key, (v = compile(crds)));
  return v;
}

function compile(crds: CrdInfo[]): CrValidator {
  const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
  addFormats.default(ajv, ["date-time", "date", "uri", "email", "hostname", "ipv4", "ipv6", "uuid", "byte"]);
  // Formats Kubernetes accepts without checking more than the type.
  for (const f of ["int32", "int64", "float", "double", "password", "quantity", "duration"])
    ajv.addFormat(f, true);
  const byKind = new Map<string, { raw: Schema; fn: ValidateFunction }>();
  for (const c of crds) {
    const draft = toDraft7(c.schema) as Schema;
    draft.properties = { ...(draft.properties ?? {}), metadata: { type: "object" } };
    byKind.set(c.kind, { raw: c.schema, fn: ajv.compile(draft) });
  }
  return {
    admit(kind, obj, old) {
      const entry = byKind.get(kind);
      if (!entry) return { value: obj, causes: [], dropped: [] };
      const dropped: string[] = [];
      const pruned = prune(entry.raw, obj, dropped) as Obj;
      pruned.apiVersion = obj.apiVersion;
      pruned.kind = obj.kind;
      pruned.metadata = obj.metadata;
      const ok = entry.fn(pruned);
      const errs = ok
        ? []
        : (entry.fn.errors ?? []).filter((e) => e.keyword !== "anyOf" && e.keyword !== "if");
      const causes = errs.map((e) => causeOf(e, pruned));
      // The server runs the CEL rules on a schema-valid object (a type error makes them moot).
      if (causes.length === 0)
        for (const v of celViolations(entry.raw, pruned, old))
          causes.push({ reason: v.reason, message: v.message, field: v.field });
      const seen = new Set<string>();
      return {
        dropped: dropped.filter((d) => d !== "metadata" && !d.startsWith("metadata.")),
        value: pruned,
        causes: causes.filter((c) => !seen.has(c.field + c.message) && seen.add(c.field + c.message)),
      };
    },
  };
}
