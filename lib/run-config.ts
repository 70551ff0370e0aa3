// The one resolver of run settings: a TrainingRun or AgentWorkerPool (the run.json the operator
// mounts from the run's ConfigMap, the YAML a user gives `l0 local`, an object read from the
// API) validated against crds/ (schema and CEL rules) with the CRD's defaults applied, typed as
// Resolved* (every defaulted field present). Programs take their section of the result and
// never restate a default. Errors name the file and the field.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { type ResolvedAgentWorkerPool, type ResolvedTrainingRun } from "../gen/crds/index.js";
import { createSchemaValidator, readCrds, type SchemaValidator } from "./crd-schema.js";
import { invalidFields } from "./errors.js";

let cached: SchemaValidator | undefined;

/** The validator for the CRDs shipped with this package (crds/ at the package root). */
export function defaultValidator(): SchemaValidator {
  if (!cached) {
    let dir = dirname(fileURLToPath(import.meta.url));
    // lib/ in a checkout, dist/lib/ in an image: crds/ sits at the package root either way.
    const root = dir.endsWith("/dist/lib") ? join(dir, "..", "..") : join(dir, "..");
    dir = join(root, "crds");
    cached = createSchemaValidator(readCrds(dir), { rejectUnknown: true });
  }
  return cached;
}

/**
 * Validates an already-parsed custom resource of `kind` against its CRD (schema, then CEL
 * rules) and applies the schema's defaults: the one resolver every program uses. Errors name
 * `source` (a file; "" for an object that names itself) and the field.
 */
function resolve(kind: string, obj: unknown, source: string, validator: SchemaValidator): unknown {
  if (obj === null || typeof obj !== "object") {
    throw invalidFields([{ field: source, description: "must be a YAML/JSON object" }]);
  }
  const o = obj as Record<string, unknown>;
  if (o.kind !== undefined && o.kind !== kind) {
    throw invalidFields([
      { field: `${source}: kind`, description: `must be ${kind}, got ${JSON.stringify(o.kind)}` },
    ]);
  }
  const { value, violations } = validator.validate(kind, { apiVersion: "l0.dev/v1alpha1", kind, ...o });
  if (violations.length > 0) {
    throw invalidFields(
      violations.map((v) => ({
        field: source ? `${source}: ${v.field}` : v.field,
        description: v.description,
      })),
    );
  }
  return value;
}

/** A TrainingRun, validated and with every CRD default applied. */
export function parseTrainingRun(
  obj: unknown,
  source = "TrainingRun",
  validator = defaultValidator(),
): ResolvedTrainingRun {
  return resolve("TrainingRun", obj, source, validator) as ResolvedTrainingRun;
}

/** An AgentWorkerPool, validated and with every CRD default applied. */
export function parseWorkerPool(
  obj: unknown,
  source = "AgentWorkerPool",
  validator = defaultValidator(),
): ResolvedAgentWorkerPool {
  return resolve("AgentWorkerPool", obj, source, validator) as ResolvedAgentWorkerPool;
}

/** Reads the first TrainingRun from a YAML or JSON file. */
export function readTrainingRun(path: string, validator = defaultValidator()): ResolvedTrainingRun {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw invalidFields([{ field: path, description: `cannot read: ${(err as Error).message}` }]);
  }
  let obj: unknown;
  try {
    obj = parse(text);
  } catch (err) {
    throw invalidFields([{ field: path, description: `not valid YAML/JSON: ${(err as Error).message}` }]);
  }
  return parseTrainingRun(obj, path, validator);
}
