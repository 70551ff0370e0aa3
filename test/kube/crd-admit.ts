// A CustomResourceDefinition checked as the real API server checks it on create and update
// (apiextensions-apiserver pkg/apis/apiextensions/validation and
// pkg/apiserver/schema/defaulting/validation.go): every CEL rule compiles, and every `default`
// is valid against the schema node it sits on, CEL rules of that subtree included, evaluated on
// the default exactly as written: nested defaults are NOT applied first, and a default must not
// carry fields the schema would prune. This is what rejected `default: {}` on an object whose
// rule reads `self.mode` ("no such key") on a real v1.36 server.
import { Ajv, type ValidateFunction } from "ajv";
import { celViolations, ruleCompileError, type CelRule } from "../../lib/cel.js";
import { toDraft7 } from "../../lib/crd-schema.js";
import { type Cause } from "./errors.js";
import { prune } from "./schema.js";
import { isObj, type Obj } from "./types.js";

type Schema = Record<string, any>;

const ajv = new Ajv({ allErrors: true, useDefaults: false, strict: false, validateFormats: false });
const compiled = new Map<string, ValidateFunction>();

function schemaCheck(schema: Schema): ValidateFunction {
  const key = JSON.stringify(schema);
  let fn = compiled.get(key);
  if (!fn) compiled.set(key, (fn = ajv.compile(toDraft7(schema) as object)));
  return fn;
}

const invalid = (field: string, value: unknown, detail: string): Cause => ({
  reason: "FieldValueInvalid",
  field,
  message: `Invalid value: ${isObj(value) ? '"object"' : Array.isArray(value) ? '"array"' : JSON.stringify(value)}: ${detail}`,
});

function defaultCauses(node: Schema, path: string): Cause[] {
  const value = node.default;
  const field = `${path}.default`;
  const causes: Cause[] = [];
  const dropped: string[] = [];
  prune(node, structuredClone(value), dropped);
  if (dropped.length > 0)
    causes.push(invalid(field, value, `must not have unknown fields: ${dropped.join(", ")}`));
  const fn = schemaCheck(node);
  if (!fn(structuredClone(value)))
    for (const e of fn.errors ?? [])
      causes.push(invalid(`${field}${e.instancePath.replace(/\//g, ".")}`, value, e.message ?? "is invalid"));
  else
    for (const v of celViolations(node, value))
      causes.push({
        reason: v.reason,
        field: [field, v.field].filter(Boolean).join("."),
        message: v.message,
      });
  return causes;
}

/** Whether a rule's `fieldPath` (`.a.b`, dotted fields only) names a field of the schema. */
function fieldPathExists(node: Schema, fieldPath: string): boolean {
  if (!fieldPath.startsWith(".")) return false;
  let at: Schema | undefined = node;
  for (const part of fieldPath.slice(1).split(".")) at = at?.properties?.[part];
  return at !== undefined;
}

/** Every cause the server would give for the schema of one version (path names that schema). */
export function schemaCauses(node: Schema | undefined, path: string): Cause[] {
  if (!isObj(node)) return [];
  const causes: Cause[] = [];
  ((node["x-kubernetes-validations"] ?? []) as CelRule[]).forEach((r, i) => {
    const err = ruleCompileError(r.rule);
    if (err)
      causes.push(
        invalid(`${path}.x-kubernetes-validations[${i}].rule`, r.rule, `compilation failed: ${err}`),
      );
    if (r.fieldPath !== undefined && !fieldPathExists(node, r.fieldPath))
      causes.push(
        invalid(
          `${path}.x-kubernetes-validations[${i}].fieldPath`,
          r.fieldPath,
          "fieldPath must be a valid path",
        ),
      );
  });
  if ("default" in node && node.default !== null) causes.push(...defaultCauses(node, path));
  for (const [k, v] of Object.entries((node.properties ?? {}) as Obj))
    causes.push(...schemaCauses(v as Schema, `${path}.properties[${k}]`));
  if (isObj(node.items)) causes.push(...schemaCauses(node.items, `${path}.items`));
  if (isObj(node.additionalProperties))
    causes.push(...schemaCauses(node.additionalProperties, `${path}.additionalProperties`));
  return causes;
}

/** Every cause the API server would give for this CustomResourceDefinition. */
export function crdCauses(crd: Obj): Cause[] {
  const versions = ((crd.spec as Obj | undefined)?.versions ?? []) as Obj[];
  return versions.flatMap((v, i) =>
    schemaCauses(
      (v.schema as Obj | undefined)?.openAPIV3Schema as Schema | undefined,
      `spec.versions[${i}].schema.openAPIV3Schema`,
    ),
  );
}
