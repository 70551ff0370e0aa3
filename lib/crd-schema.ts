// Validation of custom resources against the OpenAPI v3 schemas in crds/, with the API
// server's defaulting, so every program (operator, hub, `l0 local`) checks a TrainingRun the
// same way a cluster would and names the bad field, CEL rules (x-kubernetes-validations)
// included (lib/cel.ts).
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";
import { parseAllDocuments } from "yaml";
import { celViolations } from "./cel.js";
import { type FieldViolation } from "./errors.js";

export interface CrdInfo {
  group: string;
  version: string;
  kind: string;
  plural: string;
  namespaced: boolean;
  /** The raw openAPIV3Schema of the storage version. */
  schema: Record<string, unknown>;
  /** The whole CRD object as read from YAML. */
  crd: Record<string, unknown>;
}

interface CrdDoc {
  kind?: string;
  spec: {
    group: string;
    scope: string;
    names: { kind: string; plural: string };
    versions: { name: string; storage?: boolean; schema: { openAPIV3Schema: Record<string, unknown> } }[];
  };
}

/** Reads every CustomResourceDefinition in a directory of YAML files. */
export function readCrds(dir: string): CrdInfo[] {
  const out: CrdInfo[] = [];
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith(".yaml") || f.endsWith(".yml"))
    .sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), "utf8"))) {
      const crd = doc.toJS() as CrdDoc | null;
      if (crd?.kind !== "CustomResourceDefinition") continue;
      const version = crd.spec.versions.find((v) => v.storage) ?? crd.spec.versions[0];
      if (!version) throw new Error(`${file}: CRD ${crd.spec.names.kind} has no versions`);
      out.push({
        group: crd.spec.group,
        version: version.name,
        kind: crd.spec.names.kind,
        plural: crd.spec.names.plural,
        namespaced: crd.spec.scope === "Namespaced",
        schema: version.schema.openAPIV3Schema,
        crd: crd as unknown as Record<string, unknown>,
      });
    }
  }
  return out;
}

/** Kubernetes' OpenAPI v3 dialect (draft-4 style exclusive bounds, nullable, x-kubernetes-*) -> draft-07. */
export function toDraft7(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(toDraft7);
  if (s === null || typeof s !== "object") return s;
  const src = s as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(src)) {
    if (k.startsWith("x-kubernetes-") || k === "nullable" || k === "example" || k === "externalDocs")
      continue;
    if (k === "exclusiveMinimum" || k === "exclusiveMaximum") continue;
    out[k] = k === "default" || k === "enum" ? v : toDraft7(v);
  }
  if (src.exclusiveMinimum === true && typeof src.minimum === "number") {
    delete out.minimum;
    out.exclusiveMinimum = src.minimum;
  }
  if (src.exclusiveMaximum === true && typeof src.maximum === "number") {
    delete out.maximum;
    out.exclusiveMaximum = src.maximum;
  }
  if (src["x-kubernetes-int-or-string"]) {
    delete out.type;
    out.anyOf = [{ type: "integer" }, { type: "string" }];
  }
  if (src.nullable === true && typeof out.type === "string") out.type = [out.type, "null"];
  return out;
}

function violationOf(e: ErrorObject): FieldViolation {
  const path = e.instancePath
    .split("/")
    .slice(1)
    .map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p.replace(/~1/g, "/").replace(/~0/g, "~")}`))
    .join("")
    .replace(/^\./, "");
  let field = path;
  let description = e.message ?? "is invalid";
  if (e.keyword === "required")
    field = [path, (e.params as { missingProperty: string }).missingProperty].filter(Boolean).join(".");
  if (e.keyword === "required") description = "is required";
  if (e.keyword === "enum")
    description = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(", ")}`;
  if (e.keyword === "additionalProperties") {
    field = [path, (e.params as { additionalProperty: string }).additionalProperty].filter(Boolean).join(".");
    description = "is not a known field";
  }
  return { field: field || "(root)", description };
}

export interface SchemaValidator {
  /**
   * Validates a copy of `obj`, applies schema defaults to it, and returns it with the violations
   * (empty when valid). Unknown fields are reported, not silently pruned, when `rejectUnknown`.
   */
  validate(kind: string, obj: unknown): { value: unknown; violations: FieldViolation[] };
}

export function createSchemaValidator(
  crds: CrdInfo[],
  opts: { rejectUnknown?: boolean } = {},
): SchemaValidator {
  const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
  // Kubernetes' formats (int32, int64, date-time, byte, ...) as the API server checks them.
  addFormats.default(ajv);
  const byKind = new Map<string, { fn: ValidateFunction; raw: Record<string, unknown> }>();
  const closed = (s: unknown): unknown => {
    // Objects with declared properties are closed (as a structural schema prunes the rest).
    if (Array.isArray(s)) return s.map(closed);
    if (s === null || typeof s !== "object") return s;
    const o = Object.fromEntries(
      Object.entries(s).map(([k, v]) => [k, k === "default" || k === "enum" ? v : closed(v)]),
    );
    if (opts.rejectUnknown && o.type === "object" && o.properties && !("additionalProperties" in o)) {
      o.additionalProperties = false;
    }
    return o;
  };
  for (const c of crds) {
    const schema = closed(toDraft7(c.schema)) as Record<string, unknown>;
    // metadata is the API server's business, never the CRD's schema's.
    const props = (schema.properties ?? {}) as Record<string, unknown>;
    props.metadata = { type: "object" };
    byKind.set(c.kind, { fn: ajv.compile(schema), raw: c.schema });
  }
  return {
    validate(kind, obj) {
      const entry = byKind.get(kind);
      if (!entry)
        return {
          value: obj,
          violations: [{ field: "kind", description: `unknown kind ${JSON.stringify(kind)}` }],
        };
      const value = structuredClone(obj);
      if (!entry.fn(value)) return { value, violations: (entry.fn.errors ?? []).map(violationOf) };
      const cel = celViolations(entry.raw, value).map((v) => ({
        field: v.field || "(root)",
        description: v.detail,
      }));
      return { value, violations: cel };
    },
  };
}
